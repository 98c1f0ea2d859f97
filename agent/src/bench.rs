//! The performance benchmark's measurements (`gather-agent bench`); see docs/PERFORMANCE.md.
