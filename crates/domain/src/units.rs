//! UCUM units: parsing the codes clinical data uses, and converting values between them.
//!
//! This implements the part of the Unified Code for Units of Measure that clinical feature
//! contracts and FHIR Quantities use: metric prefixes, base and derived atoms, clinical
//! non-metric atoms (`mm[Hg]`, `[degF]`, `[in_i]`, `[lb_av]`), `10*N` factors, exponents,
//! `.` and `/` composition, parentheses and `{annotations}`. Two deliberate departures, both
//! so that conversions fail loudly rather than silently:
//! - `mol` is its own dimension (UCUM defines it as 6.0221367e23 of `1`), so a mass
//!   concentration and a substance concentration are never commensurable unless a molar
//!   mass is supplied ([`convert_with_molar_mass`]);
//! - arbitrary units (`[IU]`, `[iU]`) are a dimension of their own.
//!
//! `Cel` and `[degF]` carry an offset and convert only as bare units.

use std::fmt;

use crate::error::{Error, Result};

/// Exponents of the base dimensions: length, mass, time, angle, temperature, charge,
/// luminous intensity, amount of substance, arbitrary (international) units.
type Dims = [i8; 9];

const L: usize = 0;
const M: usize = 1;
const T: usize = 2;
const ANGLE: usize = 3;
const TEMP: usize = 4;
const Q: usize = 5;
const LUM: usize = 6;
const N: usize = 7;
const ARB: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Special {
    Celsius,
    Fahrenheit,
}

/// A parsed UCUM unit: a factor to the base units and the dimensions.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    code: String,
    factor: f64,
    dims: Dims,
    special: Option<Special>,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

struct Atom {
    code: &'static str,
    metric: bool,
    factor: f64,
    dims: Dims,
}

const fn d(pairs: &[(usize, i8)]) -> Dims {
    let mut out = [0i8; 9];
    let mut i = 0;
    while i < pairs.len() {
        out[pairs[i].0] = pairs[i].1;
        i += 1;
    }
    out
}

const DAY: f64 = 86_400.0;

// Factors are to the base units m, g, s, rad, K, C, cd, mol.
const ATOMS: &[Atom] = &[
    Atom {
        code: "m",
        metric: true,
        factor: 1.0,
        dims: d(&[(L, 1)]),
    },
    Atom {
        code: "g",
        metric: true,
        factor: 1.0,
        dims: d(&[(M, 1)]),
    },
    Atom {
        code: "s",
        metric: true,
        factor: 1.0,
        dims: d(&[(T, 1)]),
    },
    Atom {
        code: "rad",
        metric: true,
        factor: 1.0,
        dims: d(&[(ANGLE, 1)]),
    },
    Atom {
        code: "K",
        metric: true,
        factor: 1.0,
        dims: d(&[(TEMP, 1)]),
    },
    Atom {
        code: "C",
        metric: true,
        factor: 1.0,
        dims: d(&[(Q, 1)]),
    },
    Atom {
        code: "cd",
        metric: true,
        factor: 1.0,
        dims: d(&[(LUM, 1)]),
    },
    Atom {
        code: "mol",
        metric: true,
        factor: 1.0,
        dims: d(&[(N, 1)]),
    },
    Atom {
        code: "eq",
        metric: true,
        factor: 1.0,
        dims: d(&[(N, 1)]),
    },
    Atom {
        code: "osm",
        metric: true,
        factor: 1.0,
        dims: d(&[(N, 1)]),
    },
    Atom {
        code: "kat",
        metric: true,
        factor: 1.0,
        dims: d(&[(N, 1), (T, -1)]),
    },
    Atom {
        code: "U",
        metric: true,
        factor: 1e-6 / 60.0,
        dims: d(&[(N, 1), (T, -1)]),
    },
    Atom {
        code: "[iU]",
        metric: true,
        factor: 1.0,
        dims: d(&[(ARB, 1)]),
    },
    Atom {
        code: "[IU]",
        metric: true,
        factor: 1.0,
        dims: d(&[(ARB, 1)]),
    },
    Atom {
        code: "L",
        metric: true,
        factor: 1e-3,
        dims: d(&[(L, 3)]),
    },
    Atom {
        code: "l",
        metric: true,
        factor: 1e-3,
        dims: d(&[(L, 3)]),
    },
    Atom {
        code: "Pa",
        metric: true,
        factor: 1e3,
        dims: d(&[(M, 1), (L, -1), (T, -2)]),
    },
    Atom {
        code: "bar",
        metric: true,
        factor: 1e8,
        dims: d(&[(M, 1), (L, -1), (T, -2)]),
    },
    Atom {
        code: "m[Hg]",
        metric: true,
        factor: 133_322_000.0,
        dims: d(&[(M, 1), (L, -1), (T, -2)]),
    },
    Atom {
        code: "m[H2O]",
        metric: true,
        factor: 9_806_650.0,
        dims: d(&[(M, 1), (L, -1), (T, -2)]),
    },
    Atom {
        code: "Hz",
        metric: true,
        factor: 1.0,
        dims: d(&[(T, -1)]),
    },
    Atom {
        code: "N",
        metric: true,
        factor: 1e3,
        dims: d(&[(M, 1), (L, 1), (T, -2)]),
    },
    Atom {
        code: "J",
        metric: true,
        factor: 1e3,
        dims: d(&[(M, 1), (L, 2), (T, -2)]),
    },
    Atom {
        code: "W",
        metric: true,
        factor: 1e3,
        dims: d(&[(M, 1), (L, 2), (T, -3)]),
    },
    Atom {
        code: "cal",
        metric: true,
        factor: 4184.0,
        dims: d(&[(M, 1), (L, 2), (T, -2)]),
    },
    Atom {
        code: "A",
        metric: true,
        factor: 1.0,
        dims: d(&[(Q, 1), (T, -1)]),
    },
    Atom {
        code: "t",
        metric: true,
        factor: 1e6,
        dims: d(&[(M, 1)]),
    },
    Atom {
        code: "min",
        metric: false,
        factor: 60.0,
        dims: d(&[(T, 1)]),
    },
    Atom {
        code: "h",
        metric: false,
        factor: 3600.0,
        dims: d(&[(T, 1)]),
    },
    Atom {
        code: "d",
        metric: false,
        factor: DAY,
        dims: d(&[(T, 1)]),
    },
    Atom {
        code: "wk",
        metric: false,
        factor: 7.0 * DAY,
        dims: d(&[(T, 1)]),
    },
    Atom {
        code: "mo",
        metric: false,
        factor: 30.4375 * DAY,
        dims: d(&[(T, 1)]),
    },
    Atom {
        code: "a",
        metric: false,
        factor: 365.25 * DAY,
        dims: d(&[(T, 1)]),
    },
    Atom {
        code: "[in_i]",
        metric: false,
        factor: 0.0254,
        dims: d(&[(L, 1)]),
    },
    Atom {
        code: "[ft_i]",
        metric: false,
        factor: 0.3048,
        dims: d(&[(L, 1)]),
    },
    Atom {
        code: "[lb_av]",
        metric: false,
        factor: 453.592_37,
        dims: d(&[(M, 1)]),
    },
    Atom {
        code: "[oz_av]",
        metric: false,
        factor: 28.349_523_125,
        dims: d(&[(M, 1)]),
    },
    Atom {
        code: "%",
        metric: false,
        factor: 0.01,
        dims: d(&[]),
    },
    Atom {
        code: "[ppm]",
        metric: false,
        factor: 1e-6,
        dims: d(&[]),
    },
    Atom {
        code: "deg",
        metric: false,
        factor: std::f64::consts::PI / 180.0,
        dims: d(&[(ANGLE, 1)]),
    },
];

const PREFIXES: &[(&str, f64)] = &[
    ("da", 1e1),
    ("Y", 1e24),
    ("Z", 1e21),
    ("E", 1e18),
    ("P", 1e15),
    ("T", 1e12),
    ("G", 1e9),
    ("M", 1e6),
    ("k", 1e3),
    ("h", 1e2),
    ("d", 1e-1),
    ("c", 1e-2),
    ("m", 1e-3),
    ("u", 1e-6),
    ("n", 1e-9),
    ("p", 1e-12),
    ("f", 1e-15),
    ("a", 1e-18),
];

impl Unit {
    /// Parses a UCUM code such as `mg/dL`, `10*9/L`, `mm[Hg]`, `/min`, `kg/m2` or `Cel`.
    pub fn parse(code: &str) -> Result<Unit> {
        let err = |why: &str| Error::invalid(format!("`{code}` is not a UCUM unit: {why}"));
        if code.is_empty() {
            return Err(err("empty"));
        }
        if code.chars().any(char::is_whitespace) {
            return Err(err("UCUM codes contain no spaces"));
        }
        match code {
            "Cel" => return Ok(Unit::special(code, Special::Celsius)),
            "[degF]" => return Ok(Unit::special(code, Special::Fahrenheit)),
            _ => {}
        }
        let mut p = Parser {
            s: code.as_bytes(),
            pos: 0,
        };
        let (factor, dims) = p.term().map_err(|w| err(&w))?;
        if p.pos != p.s.len() {
            return Err(err(&format!("unexpected `{}`", &code[p.pos..])));
        }
        Ok(Unit {
            code: code.to_owned(),
            factor,
            dims,
            special: None,
        })
    }

    fn special(code: &str, s: Special) -> Unit {
        Unit {
            code: code.to_owned(),
            factor: 1.0,
            dims: d(&[(TEMP, 1)]),
            special: Some(s),
        }
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether values in `self` can be converted to `other` without extra information.
    pub fn is_commensurable(&self, other: &Unit) -> bool {
        self.dims == other.dims
    }

    /// Converts `value` from this unit to `to`.
    pub fn convert(&self, value: f64, to: &Unit) -> Result<f64> {
        if self.special.is_some() || to.special.is_some() {
            if self.dims != to.dims {
                return Err(not_commensurable(self, to));
            }
            let kelvin = match self.special {
                Some(Special::Celsius) => value + 273.15,
                Some(Special::Fahrenheit) => (value + 459.67) * 5.0 / 9.0,
                None => value * self.factor,
            };
            return Ok(match to.special {
                Some(Special::Celsius) => kelvin - 273.15,
                Some(Special::Fahrenheit) => kelvin * 9.0 / 5.0 - 459.67,
                None => kelvin / to.factor,
            });
        }
        if self.dims != to.dims {
            return Err(not_commensurable(self, to));
        }
        Ok(value * self.factor / to.factor)
    }
}

fn not_commensurable(a: &Unit, b: &Unit) -> Error {
    Error::invalid(format!(
        "`{a}` cannot be converted to `{b}`: they measure different things"
    ))
}

/// Converts between a mass-based and a substance-based unit (e.g. creatinine `mg/dL` to
/// `umol/L`) using the molar mass of the analyte in g/mol; plain conversions pass through.
pub fn convert_with_molar_mass(value: f64, from: &Unit, to: &Unit, g_per_mol: f64) -> Result<f64> {
    if from.is_commensurable(to) {
        return from.convert(value, to);
    }
    if from.special.is_some() || to.special.is_some() || g_per_mol.is_nan() || g_per_mol <= 0.0 {
        return Err(not_commensurable(from, to));
    }
    let mut mass_to_mol = from.dims;
    mass_to_mol[M] -= 1;
    mass_to_mol[N] += 1;
    if mass_to_mol == to.dims {
        return Ok(value * from.factor / g_per_mol / to.factor);
    }
    let mut mol_to_mass = from.dims;
    mol_to_mass[M] += 1;
    mol_to_mass[N] -= 1;
    if mol_to_mass == to.dims {
        return Ok(value * from.factor * g_per_mol / to.factor);
    }
    Err(not_commensurable(from, to))
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn term(&mut self) -> std::result::Result<(f64, Dims), String> {
        let mut factor = 1.0;
        let mut dims = [0i8; 9];
        let mut sign = 1i8;
        if self.peek() == Some(b'/') {
            self.pos += 1;
            sign = -1;
        }
        loop {
            let (f, d) = self.component()?;
            combine(&mut factor, &mut dims, f, &d, sign)?;
            match self.peek() {
                Some(b'.') => {
                    self.pos += 1;
                    sign = 1;
                }
                Some(b'/') => {
                    self.pos += 1;
                    sign = -1;
                }
                _ => return Ok((factor, dims)),
            }
        }
    }

    fn component(&mut self) -> std::result::Result<(f64, Dims), String> {
        match self.peek() {
            None => Err("a unit is missing at the end".into()),
            Some(b'(') => {
                self.pos += 1;
                let inner = self.term()?;
                if self.peek() != Some(b')') {
                    return Err("unbalanced parenthesis".into());
                }
                self.pos += 1;
                let exp = self.exponent()?.unwrap_or(1);
                self.skip_annotation()?;
                pow(inner, exp)
            }
            Some(b'{') => {
                self.skip_annotation()?;
                Ok((1.0, [0; 9]))
            }
            Some(_) => {
                let start = self.pos;
                let mut depth = 0i32;
                while let Some(c) = self.peek() {
                    match c {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b'.' | b'/' | b'(' | b')' | b'{' if depth == 0 => break,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let symbol = std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| "not valid text".to_string())?;
                let unit = simple_with_exponent(symbol)?;
                self.skip_annotation()?;
                Ok(unit)
            }
        }
    }

    fn exponent(&mut self) -> std::result::Result<Option<i32>, String> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(None);
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|e| e.to_string())?;
        text.parse()
            .map(Some)
            .map_err(|_| format!("bad exponent `{text}`"))
    }

    fn skip_annotation(&mut self) -> std::result::Result<(), String> {
        if self.peek() == Some(b'{') {
            while let Some(c) = self.peek() {
                self.pos += 1;
                if c == b'}' {
                    return Ok(());
                }
                if c == b'{' && self.s[..self.pos - 1].ends_with(b"{") {
                    return Err("nested annotation".into());
                }
            }
            return Err("unterminated annotation `{`".into());
        }
        Ok(())
    }
}

fn combine(
    factor: &mut f64,
    dims: &mut Dims,
    f: f64,
    d: &Dims,
    sign: i8,
) -> std::result::Result<(), String> {
    if sign > 0 {
        *factor *= f;
    } else {
        *factor /= f;
    }
    for i in 0..dims.len() {
        dims[i] = dims[i]
            .checked_add(d[i].checked_mul(sign).ok_or("exponent too large")?)
            .ok_or("exponent too large")?;
    }
    Ok(())
}

fn pow((f, d): (f64, Dims), exp: i32) -> std::result::Result<(f64, Dims), String> {
    if exp.abs() > 12 {
        return Err(format!("exponent {exp} is out of range"));
    }
    let mut out = [0i8; 9];
    for i in 0..9 {
        out[i] = (d[i] as i32 * exp)
            .try_into()
            .map_err(|_| "exponent too large".to_string())?;
    }
    Ok((f.powi(exp), out))
}

/// A symbol such as `mg`, `m2`, `[in_i]2`, `10*3`, `10^-6` or `1`.
fn simple_with_exponent(symbol: &str) -> std::result::Result<(f64, Dims), String> {
    if symbol.is_empty() {
        return Err("a unit is missing".into());
    }
    // Pure numbers: `1`, `100`, and powers of ten `10*3` / `10^3`.
    if symbol.bytes().all(|b| b.is_ascii_digit()) {
        let v: f64 = symbol
            .parse()
            .map_err(|_| format!("bad number `{symbol}`"))?;
        if v <= 0.0 {
            return Err("a factor must be positive".into());
        }
        return Ok((v, [0; 9]));
    }
    for sep in ["10*", "10^"] {
        if let Some(rest) = symbol.strip_prefix(sep) {
            let e: i32 = rest
                .parse()
                .map_err(|_| format!("bad power of ten `{symbol}`"))?;
            if e.abs() > 30 {
                return Err(format!("power of ten `{symbol}` is out of range"));
            }
            return Ok((10f64.powi(e), [0; 9]));
        }
    }
    // Split a trailing exponent: digits, optionally signed, after the atom.
    let bytes = symbol.as_bytes();
    let mut cut = bytes.len();
    while cut > 0 && bytes[cut - 1].is_ascii_digit() {
        cut -= 1;
    }
    if cut > 0 && cut < bytes.len() && matches!(bytes[cut - 1], b'+' | b'-') {
        cut -= 1;
    }
    let (atom, exp) = if cut == bytes.len() || cut == 0 {
        (symbol, 1)
    } else {
        let e: i32 = symbol[cut..]
            .parse()
            .map_err(|_| format!("bad exponent in `{symbol}`"))?;
        (&symbol[..cut], e)
    };
    let unit = prefixed_atom(atom).ok_or_else(|| format!("unknown unit `{atom}`"))?;
    pow(unit, exp)
}

fn prefixed_atom(sym: &str) -> Option<(f64, Dims)> {
    if let Some(a) = ATOMS.iter().find(|a| a.code == sym) {
        return Some((a.factor, a.dims));
    }
    for (p, pf) in PREFIXES {
        if let Some(rest) = sym.strip_prefix(p)
            && let Some(a) = ATOMS.iter().find(|a| a.code == rest && a.metric)
        {
            return Some((pf * a.factor, a.dims));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Unit {
        Unit::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn parses_clinical_units() {
        for code in [
            "/min",
            "{beats}/min",
            "Cel",
            "[degF]",
            "mm[Hg]",
            "%",
            "mg/dL",
            "umol/L",
            "mmol/L",
            "g/dL",
            "10*9/L",
            "10*3/uL",
            "kg/m2",
            "kg",
            "cm",
            "[in_i]",
            "[lb_av]",
            "a",
            "mo",
            "h",
            "mL/min/{1.73_m2}",
            "U/L",
            "meq/L",
            "1",
            "ng/mL",
            "pg/mL",
            "fL",
            "mL/(min.kg)",
            "s",
            "[IU]/L",
            "cm[H2O]",
            "L/min",
            "mosm/kg",
            "ug/dL",
        ] {
            assert!(Unit::parse(code).is_ok(), "{code}: {:?}", Unit::parse(code));
        }
    }

    #[test]
    fn rejects_unknown_units() {
        for code in [
            "furlong", "mg/", "kg m2", "", "mg/dL)", "(mg", "xmg", "{open", "mm[Hg",
        ] {
            assert!(Unit::parse(code).is_err(), "{code} should fail");
        }
    }

    #[test]
    fn temperature() {
        assert!(close(u("[degF]").convert(98.6, &u("Cel")).unwrap(), 37.0));
        assert!(close(u("Cel").convert(37.0, &u("[degF]")).unwrap(), 98.6));
        assert!(close(u("Cel").convert(0.0, &u("K")).unwrap(), 273.15));
        assert!(u("Cel").convert(1.0, &u("m")).is_err());
    }

    #[test]
    fn plain_conversions() {
        assert!(close(u("mg/dL").convert(1.0, &u("g/L")).unwrap(), 0.01));
        assert!(close(
            u("mmol/L").convert(1.0, &u("umol/L")).unwrap(),
            1000.0
        ));
        assert!(close(u("10*9/L").convert(7.5, &u("10*3/uL")).unwrap(), 7.5));
        assert!(close(u("[in_i]").convert(1.0, &u("cm")).unwrap(), 2.54));
        assert!(close(
            u("[lb_av]").convert(1.0, &u("kg")).unwrap(),
            0.453_592_37
        ));
        assert!(close(
            u("mm[Hg]").convert(760.0, &u("kPa")).unwrap(),
            101.324_72
        ));
        assert!(close(u("/min").convert(60.0, &u("/s")).unwrap(), 1.0));
        assert!(close(u("%").convert(95.0, &u("1")).unwrap(), 0.95));
        assert!(u("mg/dL").convert(1.0, &u("mmol/L")).is_err());
    }

    #[test]
    fn molar_conversions() {
        // Creatinine: 1 mg/dL = 88.42 umol/L (molar mass 113.12 g/mol).
        let v = convert_with_molar_mass(1.0, &u("mg/dL"), &u("umol/L"), 113.12).unwrap();
        assert!((v - 88.4017).abs() < 1e-3, "{v}");
        let back = convert_with_molar_mass(v, &u("umol/L"), &u("mg/dL"), 113.12).unwrap();
        assert!(close(back, 1.0));
        // Glucose: 180 mg/dL is about 10 mmol/L (180.156 g/mol).
        let g = convert_with_molar_mass(180.156, &u("mg/dL"), &u("mmol/L"), 180.156).unwrap();
        assert!(close(g, 10.0));
        assert!(convert_with_molar_mass(1.0, &u("mg/dL"), &u("/min"), 113.12).is_err());
    }
}
