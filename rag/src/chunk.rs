//! Splitting documents into chunks that fit the embedder: Markdown headings start a new
//! section (a chunk never spans two), paragraphs are kept whole when they fit, longer ones are
//! split at sentence ends, and consecutive chunks overlap by a few sentences so an answer that
//! straddles a boundary is still found whole in one of them.

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The heading trail above the chunk (`Shipping > Returns`), empty before the first heading.
    pub heading: String,
    /// The chunk's text (without the heading trail).
    pub text: String,
    /// 0-based position within the document.
    pub position: u32,
}

/// How long chunks are, in estimated tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunker {
    /// A chunk's size limit (a single word longer than this is still one chunk).
    pub max_tokens: usize,
    /// About this many tokens of the previous chunk start the next one.
    pub overlap_tokens: usize,
}

impl Default for Chunker {
    /// 200 estimated tokens (under the local embedder's 256 word pieces) with 40 of overlap.
    fn default() -> Self {
        Self {
            max_tokens: 200,
            overlap_tokens: 40,
        }
    }
}

/// An estimate of a text's token count (word pieces): about 4/3 per word, and at least one
/// per 4 characters for long words and numbers.
pub fn estimate_tokens(text: &str) -> usize {
    let words = text.split_whitespace().count();
    let chars = text.chars().filter(|c| !c.is_whitespace()).count();
    (words * 4).div_ceil(3).max(chars.div_ceil(4))
}

impl Chunker {
    /// Splits a (Markdown or plain) document into chunks.
    pub fn split(&self, text: &str) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        for (heading, body) in sections(text) {
            let units = self.units(&body);
            self.pack(&heading, &units, &mut chunks);
        }
        for (i, c) in chunks.iter_mut().enumerate() {
            c.position = u32::try_from(i).unwrap_or(u32::MAX);
        }
        chunks
    }

    /// Paragraphs that fit, else their sentences, else runs of words.
    fn units(&self, body: &str) -> Vec<String> {
        let mut units = Vec::new();
        for para in paragraphs(body) {
            if estimate_tokens(&para) <= self.max_tokens {
                units.push(para);
                continue;
            }
            for sentence in sentences(&para) {
                if estimate_tokens(&sentence) <= self.max_tokens {
                    units.push(sentence);
                } else {
                    let mut run = String::new();
                    for word in sentence.split_whitespace() {
                        if !run.is_empty()
                            && estimate_tokens(&run) + estimate_tokens(word) > self.max_tokens
                        {
                            units.push(std::mem::take(&mut run));
                        }
                        if !run.is_empty() {
                            run.push(' ');
                        }
                        run.push_str(word);
                    }
                    if !run.is_empty() {
                        units.push(run);
                    }
                }
            }
        }
        units
    }

    /// Packs units greedily into chunks, carrying trailing units over as overlap.
    fn pack(&self, heading: &str, units: &[String], out: &mut Vec<Chunk>) {
        let mut current: Vec<&str> = Vec::new();
        let mut tokens = 0;
        let mut fresh = 0; // units in `current` that are not overlap
        for unit in units {
            let t = estimate_tokens(unit);
            if !current.is_empty() && tokens + t > self.max_tokens {
                if fresh > 0 {
                    out.push(chunk(heading, &current));
                }
                // Overlap: the last units of this chunk, up to overlap_tokens, if the next fits.
                let mut keep: Vec<&str> = Vec::new();
                let mut kept = 0;
                for u in current.iter().rev() {
                    let ut = estimate_tokens(u);
                    if kept + ut > self.overlap_tokens || kept + ut + t > self.max_tokens {
                        break;
                    }
                    kept += ut;
                    keep.push(u);
                }
                keep.reverse();
                current = keep;
                tokens = kept;
                fresh = 0;
            }
            current.push(unit);
            tokens += t;
            fresh += 1;
        }
        if fresh > 0 {
            out.push(chunk(heading, &current));
        }
    }
}

fn chunk(heading: &str, units: &[&str]) -> Chunk {
    Chunk {
        heading: heading.to_owned(),
        text: units.join("\n\n"),
        position: 0,
    }
}

/// Markdown sections: (heading trail, body). Headings inside code fences are not headings.
fn sections(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut trail: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut in_fence = false;
    let trail_text = |t: &[(usize, String)]| {
        t.iter()
            .map(|(_, h)| h.as_str())
            .collect::<Vec<_>>()
            .join(" > ")
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        let level = trimmed.chars().take_while(|&c| c == '#').count();
        let is_heading = !in_fence
            && (1..=6).contains(&level)
            && trimmed[level..].starts_with(' ')
            && line.len() - trimmed.len() < 4;
        if is_heading {
            if !body.trim().is_empty() {
                out.push((trail_text(&trail), std::mem::take(&mut body)));
            }
            body.clear();
            trail.retain(|(l, _)| *l < level);
            trail.push((
                level,
                trimmed[level..]
                    .trim()
                    .trim_end_matches('#')
                    .trim()
                    .to_owned(),
            ));
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    if !body.trim().is_empty() {
        out.push((trail_text(&trail), body));
    }
    out
}

/// Paragraphs: separated by blank lines; a fenced code block stays one paragraph.
fn paragraphs(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_fence = false;
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if t.is_empty() && !in_fence {
            if !current.trim().is_empty() {
                out.push(current.trim_end().to_owned());
            }
            current.clear();
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim_end().to_owned());
    }
    out
}

/// Sentences: split after `.`, `!` or `?` followed by whitespace and an upper-case letter,
/// digit or opening mark (so `e.g. this` and `3.5` stay whole).
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let Some(&(_, next)) = chars.get(i + 1) else {
            continue;
        };
        if !next.is_whitespace() {
            continue;
        }
        let after = chars[i + 1..].iter().find(|(_, ch)| !ch.is_whitespace());
        if let Some(&(_, a)) = after
            && (a.is_uppercase() || a.is_ascii_digit() || matches!(a, '"' | '(' | '[' | '*'))
        {
            let end = pos + c.len_utf8();
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s.to_owned());
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_start_sections_and_carry_their_trail() {
        let md = "Intro line.\n\n# Shipping\n\nWe ship daily.\n\n## Returns\n\nThirty days.\n\n\
                  ```\n# not a heading\n```\n\n# FAQ\n\nAsk us.";
        let chunks = Chunker::default().split(md);
        let got: Vec<(&str, &str)> = chunks
            .iter()
            .map(|c| (c.heading.as_str(), c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("", "Intro line."),
                ("Shipping", "We ship daily."),
                (
                    "Shipping > Returns",
                    "Thirty days.\n\n```\n# not a heading\n```"
                ),
                ("FAQ", "Ask us."),
            ]
        );
        assert_eq!(
            chunks.iter().map(|c| c.position).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn long_paragraphs_split_at_sentences_with_overlap() {
        let sentence = |i: usize| format!("Sentence number {i} talks about hoodies and returns.");
        let para: Vec<String> = (0..40).map(sentence).collect();
        let chunker = Chunker {
            max_tokens: 60,
            overlap_tokens: 15,
        };
        let chunks = chunker.split(&para.join(" "));
        assert!(chunks.len() > 3, "{} chunks", chunks.len());
        for c in &chunks {
            assert!(estimate_tokens(&c.text) <= 60 + 5, "too long: {}", c.text);
        }
        // Every sentence is somewhere, and consecutive chunks share a sentence (the overlap).
        for i in 0..40 {
            assert!(chunks.iter().any(|c| c.text.contains(&sentence(i))));
        }
        for w in chunks.windows(2) {
            let last = w[0].text.rsplit("\n\n").next().unwrap_or_default();
            assert!(w[1].text.starts_with(last), "no overlap: {:?}", w);
        }
    }

    #[test]
    fn sentences_keep_abbreviations_and_decimals() {
        assert_eq!(
            sentences("Use e.g. the 3.5 kg box. Then ship it! Done"),
            vec!["Use e.g. the 3.5 kg box.", "Then ship it!", "Done"]
        );
    }

    #[test]
    fn a_giant_word_run_is_cut_by_words() {
        let text = "word ".repeat(500);
        let chunks = Chunker {
            max_tokens: 100,
            overlap_tokens: 0,
        }
        .split(&text);
        assert!(chunks.len() >= 5);
        assert_eq!(
            chunks
                .iter()
                .map(|c| c.text.split_whitespace().count())
                .sum::<usize>(),
            500
        );
    }
}
