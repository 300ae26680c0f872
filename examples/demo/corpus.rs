//! The word-count demos' corpus and the host's own count, shared by
//! `examples/demo` and `examples/cluster`.

use std::collections::HashMap;

const VOCABULARY: &[&str] = &[
    "the",
    "interpreter",
    "channel",
    "buffer",
    "view",
    "sandbox",
    "message",
    "host",
    "guest",
    "memory",
    "deadline",
    "plugin",
    "untrusted",
    "zero",
    "copy",
    "wasm",
];

/// A deterministic corpus of `chunks` chunks of `words` words each, drawn
/// with a skewed distribution.
pub fn corpus(chunks: usize, words: usize) -> Vec<String> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..chunks)
        .map(|_| {
            let mut chunk = String::with_capacity(words * 8);
            for i in 0..words {
                let r = next();
                let k = (r % 16).min(r >> 8 & 15) as usize; // skewed towards low indexes
                chunk.push_str(VOCABULARY[k]);
                chunk.push_str(if i % 12 == 11 { ".\n" } else { " " });
            }
            chunk
        })
        .collect()
}

/// The count the interpreters must agree with: lower-cased runs of ASCII
/// letters.
pub fn count(chunks: &[String]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for w in chunks
        .iter()
        .flat_map(|c| c.split(|c: char| !c.is_ascii_alphabetic()))
        .filter(|w| !w.is_empty())
    {
        *counts.entry(w.to_lowercase()).or_default() += 1;
    }
    counts
}
