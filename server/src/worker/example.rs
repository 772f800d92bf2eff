//! The example worker: simulated search results and a streamed model answer, with progress,
//! paced by a delay so that the demo shows them arriving and a cancel can land mid-way.

use std::time::{Duration, Instant};

use crate::events::SearchHit;
use crate::jobs::{JobKind, Outcome};
use crate::worker::JobContext;

/// Results a simulated search sends.
pub const SEARCH_RESULTS: u32 = 5;

/// Runs one job of the example worker, pausing `delay` between results (half of it between
/// model chunks).
pub async fn handle(ctx: JobContext, delay: Duration) -> Outcome {
    let run = match ctx.job().kind.clone() {
        JobKind::Search { query } => search(&ctx, &query, delay).await,
        JobKind::Model { prompt } => model(&ctx, &prompt, delay / 2).await,
    };
    run.unwrap_or_else(|err| Outcome::Failed(err.to_string()))
}

fn slug(text: &str) -> String {
    let slug: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    slug.trim_matches('-').to_owned()
}

async fn search(ctx: &JobContext, query: &str, delay: Duration) -> Result<Outcome, crate::Error> {
    let started = Instant::now();
    ctx.search_started(query).await?;
    for i in 0..SEARCH_RESULTS {
        if ctx.sleep_or_cancel(delay).await {
            return Ok(Outcome::Cancelled);
        }
        let hit = SearchHit {
            title: format!("{query}: result {}", i + 1),
            url: format!("https://example.com/{}/{}", slug(query), i + 1),
            snippet: format!(
                "A simulated result {} of {SEARCH_RESULTS} for \u{201c}{query}\u{201d}.",
                i + 1
            ),
            score: 1.0 - f64::from(i) * 0.15,
        };
        ctx.search_result(i, hit).await?;
        ctx.progress(f64::from(i + 1) / f64::from(SEARCH_RESULTS), "searching")
            .await?;
    }
    ctx.search_complete(SEARCH_RESULTS, started.elapsed())
        .await?;
    Ok(Outcome::Completed)
}

/// The simulated answer to `prompt`, as the chunks a model would stream.
pub fn answer_chunks(prompt: &str) -> Vec<String> {
    let short: String = prompt.chars().take(80).collect();
    let text = format!(
        "This is a simulated answer from the Sockeye example worker. You asked: \u{201c}{short}\u{201d}. \
         A real worker would call a model here and stream its tokens as they come, \
         each one published to every tab of the user who asked, on whichever node it is connected."
    );
    let mut chunks = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        // One word and the space after it per chunk.
        let end = rest.find(' ').map_or(rest.len(), |i| i + 1);
        chunks.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    chunks
}

async fn model(ctx: &JobContext, prompt: &str, delay: Duration) -> Result<Outcome, crate::Error> {
    let started = Instant::now();
    let chunks = answer_chunks(prompt);
    let total = chunks.len();
    let mut text = String::new();
    for (i, chunk) in chunks.iter().enumerate() {
        if ctx.sleep_or_cancel(delay).await {
            return Ok(Outcome::Cancelled);
        }
        ctx.model_chunk(i as u32, chunk).await?;
        text.push_str(chunk);
        if (i + 1) % 8 == 0 {
            ctx.progress((i + 1) as f64 / total as f64, "generating")
                .await?;
        }
    }
    ctx.model_complete(&text, total as u32, started.elapsed())
        .await?;
    Ok(Outcome::Completed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_join_into_the_answer() {
        let chunks = answer_chunks("why is the sky blue?");
        assert!(chunks.len() > 20);
        assert!(chunks.concat().contains("why is the sky blue?"));
        assert_eq!(slug("Rust async!"), "rust-async");
    }
}
