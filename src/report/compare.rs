//! `gsai-load compare A.json B.json` (placeholder while it is built).
