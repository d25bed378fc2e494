//! Errors printed with their causes: what the crate's errors show as `Debug`, so that an
//! error returned from `main` with `?` says what happened and why, not a variant's name.

/// Writes `err` and each of its causes, `: `-separated, on one line.
pub(crate) fn write_chain(
    err: &dyn std::error::Error,
    f: &mut std::fmt::Formatter<'_>,
) -> std::fmt::Result {
    write!(f, "{err}")?;
    let mut source = err.source();
    while let Some(cause) = source {
        write!(f, ": {cause}")?;
        source = cause.source();
    }
    Ok(())
}
