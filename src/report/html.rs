//! `--html FILE`: one self-contained HTML report (placeholder while it is built).
