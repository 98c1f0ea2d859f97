//! Structural limits on untrusted modules, checked from the section headers before wasmi
//! parses anything else (ABI.md §2).
//!
//! They are wasmi's `EnforcedLimits::strict()` with one change: a module may have up to
//! [`MAX_DATA_SEGMENTS`] data segments instead of 1,000, because the standard Go toolchain
//! emits one segment per static datum (tens of thousands in a 4 MB module). wasmi's limits
//! cannot be tuned one by one, so the engine runs with none and this scan enforces all of them.

/// Most functions a module may define.
pub const MAX_FUNCTIONS: u64 = 10_000;
/// Most globals a module may define.
pub const MAX_GLOBALS: u64 = 1_000;
/// Most tables a module may define.
pub const MAX_TABLES: u64 = 100;
/// Most memories a module may define.
pub const MAX_MEMORIES: u64 = 1;
/// Most element segments.
pub const MAX_ELEMENT_SEGMENTS: u64 = 1_000;
/// Most data segments: a 4.4 MB Go module has about 42,000; each costs the host a few bytes
/// of bookkeeping next to the module bytes it describes.
pub const MAX_DATA_SEGMENTS: u64 = 100_000;
/// Most params, and most results, of a function type.
pub const MAX_PARAMS: u64 = 32;
/// Function bodies must average at least this many bytes once they total
/// [`AVG_THRESHOLD_BYTES`], which defends lazy compilation against floods of tiny functions.
pub const MIN_AVG_FUNCTION_BYTES: u64 = 40;
/// See [`MIN_AVG_FUNCTION_BYTES`].
pub const AVG_THRESHOLD_BYTES: u64 = 1_000;

fn leb(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn over(what: &str, found: u64, limit: u64) -> Result<(), String> {
    if found > limit {
        return Err(format!("{found} {what} exceed the limit of {limit}"));
    }
    Ok(())
}

/// Checks the type section's params/results counts; stops quietly at anything it does not
/// know, which wasmi's own validation then refuses.
fn check_types(section: &[u8]) -> Result<(), String> {
    let mut at = 0;
    let Some(count) = leb(section, &mut at) else { return Ok(()) };
    for _ in 0..count {
        if section.get(at) != Some(&0x60) {
            return Ok(());
        }
        at += 1;
        for what in ["params", "results"] {
            let Some(n) = leb(section, &mut at) else { return Ok(()) };
            over(what, n, MAX_PARAMS)?;
            for _ in 0..n {
                match section.get(at) {
                    // (ref null? ht): a heap type follows.
                    Some(0x63 | 0x64) => {
                        at += 1;
                        if leb(section, &mut at).is_none() {
                            return Ok(());
                        }
                    }
                    Some(_) => at += 1,
                    None => return Ok(()),
                }
            }
        }
    }
    Ok(())
}

/// Refuses a module whose section headers break a structural limit; anything malformed is
/// left to wasmi's validation.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut at = 8;
    let mut functions = 0;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let Some(size) = leb(bytes, &mut at) else { return Ok(()) };
        let Some(section) = at.checked_add(size as usize).and_then(|end| bytes.get(at..end)) else { return Ok(()) };
        at += section.len();
        let mut inner = 0;
        let count = || {
            let mut i = 0;
            leb(section, &mut i).unwrap_or(0)
        };
        match id {
            1 => check_types(section)?,
            3 => {
                functions = count();
                over("functions", functions, MAX_FUNCTIONS)?;
            }
            4 => over("tables", count(), MAX_TABLES)?,
            5 => over("memories", count(), MAX_MEMORIES)?,
            6 => over("globals", count(), MAX_GLOBALS)?,
            9 => over("element segments", count(), MAX_ELEMENT_SEGMENTS)?,
            11 | 12 => over("data segments", count(), MAX_DATA_SEGMENTS)?,
            10 => {
                let n = leb(section, &mut inner).unwrap_or(0);
                let body_bytes = (section.len() - inner) as u64;
                if n > 0 && body_bytes >= AVG_THRESHOLD_BYTES && body_bytes / n < MIN_AVG_FUNCTION_BYTES {
                    return Err(format!(
                        "{n} function bodies average {} bytes, under the limit of {MIN_AVG_FUNCTION_BYTES}",
                        body_bytes / n
                    ));
                }
                over("function bodies", n.max(functions), MAX_FUNCTIONS)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).expect("valid wat")
    }

    #[test]
    fn many_data_segments_pass_up_to_the_limit_and_no_further() {
        let segments = |n: usize| module(&format!("(module (memory 1) {})", "(data (i32.const 0) \"x\")".repeat(n)));
        assert_eq!(check(&segments(5_000)), Ok(()));
        let err = check(&segments(MAX_DATA_SEGMENTS as usize + 1)).unwrap_err();
        assert!(err.contains("data segments exceed the limit of 100000"), "{err}");
    }

    #[test]
    fn strict_limits_still_hold() {
        let params = module(&format!("(module (func (param {})))", "i32 ".repeat(33)));
        assert!(check(&params).unwrap_err().contains("33 params"));
        let globals = module(&format!("(module {})", "(global i32 (i32.const 0))".repeat(1001)));
        assert!(check(&globals).unwrap_err().contains("1001 globals"));
        let tiny = module(&format!("(module {})", "(func)".repeat(500)));
        assert!(check(&tiny).unwrap_err().contains("average"));
    }
}
