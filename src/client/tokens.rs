//! Output-token counting when the server sends no usage: tiktoken `cl100k_base`, loaded once
//! on first need (it takes a fraction of a second) and only ever run after a stream has ended.

use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

/// A lazily loaded cl100k_base tokenizer, shared by all users of a run.
#[derive(Default)]
pub struct Tokenizer {
    bpe: OnceLock<Option<CoreBPE>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("loaded", &self.bpe.get().is_some())
            .finish()
    }
}

impl Tokenizer {
    /// A tokenizer that loads on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cl100k_base tokens in `text`, or None if the tokenizer could not be loaded.
    pub fn count(&self, text: &str) -> Option<u64> {
        let bpe = self
            .bpe
            .get_or_init(|| tiktoken_rs::cl100k_base().ok())
            .as_ref()?;
        Some(bpe.encode_ordinary(text).len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cl100k_tokens() {
        let t = Tokenizer::new();
        assert_eq!(t.count("hello world"), Some(2));
        assert_eq!(t.count(""), Some(0));
    }
}
