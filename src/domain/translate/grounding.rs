//! Google Search grounding → `OpenAI` `url_citation` annotations, and the numbered source
//! list `search_citations: annotations_and_list` appends.
//!
//! Google's `groundingSupports[].segment` spans are UTF-8 byte offsets into the candidate's
//! answer text; `OpenAI`'s `start_index`/`end_index` count characters. When the offsets do
//! not fit the text (not on a character boundary, out of range, or not the segment's own
//! `text`), the segment's text is looked up instead; a span found neither way is left out.

use std::fmt::Write as _;

use serde_json::Value;

use crate::domain::openai::Annotation;

/// One web source: its URL and title.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    url: String,
    title: String,
}

/// The citations of one choice, gathered from every `groundingMetadata` it carried.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Citations {
    pub(crate) annotations: Vec<Annotation>,
    /// Deduplicated by URL: cited sources in citation order, then the uncited ones.
    sources: Vec<Source>,
}

impl Citations {
    /// Adds the citations of `metadata` (a candidate's `groundingMetadata`) for the answer
    /// `text`, which starts `offset` characters into the message content.
    pub(crate) fn add(&mut self, metadata: &Value, text: &str, offset: u32) {
        let chunks: Vec<Option<Source>> = list(metadata, "groundingChunks")
            .iter()
            .map(web_source)
            .collect();
        for support in list(metadata, "groundingSupports") {
            let span = support.get("segment").and_then(|s| char_span(text, s));
            for index in list(support, "groundingChunkIndices") {
                let Some(source) = index
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| chunks.get(i))
                    .and_then(Option::as_ref)
                else {
                    continue;
                };
                self.note(source);
                if let Some((start, end)) = span {
                    let annotation = Annotation::url_citation(
                        source.url.clone(),
                        source.title.clone(),
                        offset.saturating_add(start),
                        offset.saturating_add(end),
                    );
                    if !self.annotations.contains(&annotation) {
                        self.annotations.push(annotation);
                    }
                }
            }
        }
        for source in chunks.iter().flatten() {
            self.note(source);
        }
    }

    fn note(&mut self, source: &Source) {
        if !self.sources.iter().any(|s| s.url == source.url) {
            self.sources.push(source.clone());
        }
    }

    /// `\n\nSources:\n1. [title](url)\n…`, or nothing without sources.
    pub(crate) fn sources_list(&self) -> Option<String> {
        if self.sources.is_empty() {
            return None;
        }
        let mut out = String::from("\n\nSources:");
        for (n, source) in self.sources.iter().enumerate() {
            let title = source.title.replace('[', "\\[").replace(']', "\\]");
            let url = source.url.replace('(', "%28").replace(')', "%29");
            let _ = write!(out, "\n{}. [{title}]({url})", n + 1);
        }
        Some(out)
    }
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A chunk's `web` source; other kinds (`retrievedContext`, `maps`) have no URL to cite.
fn web_source(chunk: &Value) -> Option<Source> {
    let web = chunk.get("web")?;
    let url = web.get("uri")?.as_str().filter(|u| !u.is_empty())?;
    let title = ["title", "domain"]
        .iter()
        .find_map(|k| {
            web.get(*k)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        })
        .unwrap_or(url);
    Some(Source {
        url: url.to_owned(),
        title: title.to_owned(),
    })
}

/// The segment's span in characters of `text`. `startIndex` is left out by Google when 0.
fn char_span(text: &str, segment: &Value) -> Option<(u32, u32)> {
    let index = |key: &str| {
        segment
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
    };
    let quoted = segment
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let start = index("startIndex").unwrap_or(0);
    let by_offsets = index("endIndex")
        .filter(|end| start < *end)
        .and_then(|end| text.get(start..end).map(|span| (start, end, span)))
        .filter(|(_, _, span)| quoted.is_none_or(|q| q == *span))
        .map(|(start, end, _)| (start, end));
    let (start, end) =
        by_offsets.or_else(|| quoted.and_then(|q| text.find(q).map(|at| (at, at + q.len()))))?;
    let chars = |bytes: usize| u32::try_from(text[..bytes].chars().count()).unwrap_or(u32::MAX);
    Some((chars(start), chars(end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metadata(text: &str, spans: &[(&str, &[u64])]) -> Value {
        let supports: Vec<Value> = spans
            .iter()
            .map(|(cited, chunks)| {
                let start = text.find(cited).unwrap();
                let mut segment = json!({"endIndex": start + cited.len(), "text": cited});
                if start > 0 {
                    segment["startIndex"] = json!(start);
                }
                json!({"segment": segment, "groundingChunkIndices": chunks})
            })
            .collect();
        json!({
            "groundingChunks": [
                {"web": {"uri": "https://a.example/1", "title": "a.example"}},
                {"web": {"uri": "https://b.example/2", "title": "B [two]"}},
                {"web": {"uri": "https://a.example/1", "title": "a.example"}},
                {"retrievedContext": {"uri": "gs://x"}},
            ],
            "groundingSupports": supports,
            "webSearchQueries": ["q"]
        })
    }

    fn spans(c: &Citations, text: &str) -> Vec<(String, String)> {
        c.annotations
            .iter()
            .map(|a| {
                let u = &a.url_citation;
                let span: String = text
                    .chars()
                    .skip(u.start_index as usize)
                    .take((u.end_index - u.start_index) as usize)
                    .collect();
                (span, u.url.clone())
            })
            .collect()
    }

    #[test]
    fn byte_offsets_become_character_indices_on_chinese_text() {
        let text = "北京是中国的首都。上海是最大的城市。";
        let meta = metadata(
            text,
            &[
                ("北京是中国的首都。", &[0]),
                ("上海是最大的城市。", &[1, 2]),
            ],
        );
        let mut c = Citations::default();
        c.add(&meta, text, 0);
        let a = &c.annotations[1].url_citation;
        assert_eq!(
            (a.start_index, a.end_index),
            (9, 18),
            "characters, not bytes (27..54)"
        );
        assert_eq!(
            spans(&c, text),
            [
                (
                    "北京是中国的首都。".to_owned(),
                    "https://a.example/1".to_owned()
                ),
                (
                    "上海是最大的城市。".to_owned(),
                    "https://b.example/2".to_owned()
                ),
                (
                    "上海是最大的城市。".to_owned(),
                    "https://a.example/1".to_owned()
                ),
            ]
        );
        // Offsets count from where the answer starts in `content` (after a <think> block).
        let mut shifted = Citations::default();
        shifted.add(&meta, text, 7);
        assert_eq!(shifted.annotations[0].url_citation.start_index, 7);
        assert_eq!(shifted.annotations[1].url_citation.end_index, 25);
    }

    #[test]
    fn a_segment_whose_offsets_do_not_fit_is_found_by_its_text_or_dropped() {
        let text = "Intro. Cited part.";
        let meta = json!({
            "groundingChunks": [{"web": {"uri": "https://a.example/", "title": "A"}}],
            "groundingSupports": [
                {"segment": {"startIndex": 100, "endIndex": 110, "text": "Cited part."}, "groundingChunkIndices": [0]},
                {"segment": {"startIndex": 1, "endIndex": 4, "text": "nowhere"}, "groundingChunkIndices": [0]},
                {"segment": {"endIndex": 6}, "groundingChunkIndices": [0, 5]}
            ]
        });
        let mut c = Citations::default();
        c.add(&meta, text, 0);
        assert_eq!(
            spans(&c, text),
            [
                ("Cited part.".to_owned(), "https://a.example/".to_owned()),
                ("Intro.".to_owned(), "https://a.example/".to_owned()),
            ]
        );
        // Not on a character boundary, no text: dropped.
        let mut c = Citations::default();
        c.add(
            &json!({"groundingChunks": [{"web": {"uri": "https://a.example/"}}],
                "groundingSupports": [{"segment": {"endIndex": 1}, "groundingChunkIndices": [0]}]}),
            "é",
            0,
        );
        assert!(c.annotations.is_empty());
        assert!(c.sources_list().is_some(), "the source is still listed");
    }

    #[test]
    fn the_source_list_is_numbered_deduplicated_and_in_citation_order() {
        let text = "one two";
        let meta = metadata(text, &[("two", &[1]), ("one", &[0])]);
        let mut c = Citations::default();
        c.add(&meta, text, 0);
        // The same metadata again (a later stream event) adds nothing.
        c.add(&meta, text, 0);
        assert_eq!(c.annotations.len(), 2);
        assert_eq!(
            c.sources_list().unwrap(),
            "\n\nSources:\n1. [B \\[two\\]](https://b.example/2)\n2. [a.example](https://a.example/1)"
        );
        assert_eq!(Citations::default().sources_list(), None);
        // A source without a title is listed by its URL.
        let mut c = Citations::default();
        c.add(
            &json!({"groundingChunks": [{"web": {"uri": "https://c.example/"}}]}),
            "",
            0,
        );
        assert_eq!(
            c.sources_list().unwrap(),
            "\n\nSources:\n1. [https://c.example/](https://c.example/)"
        );
    }
}
