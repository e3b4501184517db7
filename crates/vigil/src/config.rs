//! Configuration, loaded only here: defaults, then `<home>/vigil.toml`, then the
//! environment (`VIGIL_*`), then flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use vigil_domain::UserName;
use vigil_service::Location;

use crate::cli::Global;

/// The optional configuration file in a home.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// A PostgreSQL URL; without it the home's SQLite file is the store.
    pub database_url: Option<String>,
    /// The public base URL EHRs call this Vigil at (CDS Hooks `aud` and card links).
    pub public_url: Option<String>,
}

pub const CONFIG_FILE: &str = "vigil.toml";

/// Everything a command needs to know about where and as whom it runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub location: Location,
    pub user: UserName,
    pub public_url: Option<String>,
}

pub fn default_home() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) => Path::new(&h).join(".vigil"),
        None => PathBuf::from(".vigil"),
    }
}

fn read_file_config(home: &Path) -> Result<FileConfig> {
    let path = home.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("reading the configuration {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading the configuration {}", path.display())),
    }
}

pub fn user_name(flag: Option<&str>) -> Result<UserName> {
    let raw = match flag {
        Some(u) => u.to_owned(),
        None => std::env::var("USER")
            .unwrap_or_else(|_| "local".into())
            .to_ascii_lowercase(),
    };
    UserName::parse(&raw).with_context(|| "choosing who acts (--as / VIGIL_USER)".to_string())
}

impl Config {
    pub fn load(g: &Global, home_override: Option<PathBuf>) -> Result<Config> {
        let home = home_override
            .or_else(|| g.home.clone())
            .unwrap_or_else(default_home);
        let file = read_file_config(&home)?;
        let database_url = g.database_url.clone().or(file.database_url);
        if let Some(u) = &database_url
            && !(u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            bail!(
                "--database-url must be a postgres:// URL (the default store is the home's SQLite file)"
            );
        }
        let public_url = g.public_url.clone().or(file.public_url);
        if let Some(u) = &public_url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            bail!("--public-url must be an http(s) URL such as https://vigil.example.org");
        }
        Ok(Config {
            location: Location { home, database_url },
            user: user_name(g.user.as_deref())?,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
        })
    }
}
