//! `vigil quickstart`: the whole path on the bundled example, in a demo home.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Global, QuickstartArgs};
use crate::output::Out;

pub async fn run(_g: &Global, _out: &Out, _args: QuickstartArgs) -> Result<ExitCode> {
    anyhow::bail!("the example bundle is not built into this vigil yet")
}
