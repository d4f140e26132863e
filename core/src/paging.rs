//! Listings as streams, written once: every backend fetches its answer as pages (a `Vec` per
//! engine scan, LIST request or locked read) and hands callers a stream of items.
//!
//! * [`paged`] — a listing of unbounded size: it fetches one page at a time, only when the
//!   caller has consumed the previous one, so memory stays bounded by one page.
//! * [`single_page`] — an answer whose size is bounded by what it answers (one peer's pins,
//!   the due part of the expiry queue, one prefix's objects), fetched in one go.
//!
//! Either way an error is yielded as the stream's last item: a listing never continues past a
//! page it could not read (resume it from the last cursor seen).

use std::future::Future;

use futures::future;
use futures::stream::{self, BoxStream, StreamExt};

use crate::Result;

/// One page of a listing: its items, in order, and where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The page's items.
    pub items: Vec<T>,
    /// The position to fetch the next page after; `None` when this page is the last.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page of `items` that is followed by another when it holds a full `limit` items (a
    /// short page is the last): `next_after` gives the position of its last item.
    pub fn of(items: Vec<T>, limit: usize, next_after: impl FnOnce(&T) -> C) -> Self {
        let next = if items.len() < limit { None } else { items.last().map(next_after) };
        Page { items, next }
    }
}

/// A stream over a paged listing: `fetch(after)` returns the page that starts just after
/// `after` (`first` for the first page: `None` is the start of the listing). A page is fetched
/// when the caller has consumed the one before it.
pub fn paged<'a, T, C, F, Fut>(first: Option<C>, fetch: F) -> BoxStream<'a, Result<T>>
where
    T: Send + 'a,
    C: Send + 'a,
    F: FnMut(Option<C>) -> Fut + Send + 'a,
    Fut: Future<Output = Result<Page<T, C>>> + Send + 'a,
{
    // `None`: the listing is complete; `Some(after)`: the next page starts after `after`.
    stream::unfold((Some(first), fetch), |(after, mut fetch)| async move {
        let page = fetch(after?).await;
        Some(match page {
            Ok(Page { items, next }) => {
                (stream::iter(items).map(Ok).left_stream(), (next.map(Some), fetch))
            }
            Err(e) => (stream::once(future::ready(Err(e))).right_stream(), (None, fetch)),
        })
    })
    .flatten()
    .boxed()
}

/// A stream over an answer fetched in one go (bounded by what it answers, see the module doc).
pub fn single_page<'a, T, Fut>(fetch: Fut) -> BoxStream<'a, Result<T>>
where
    T: Send + 'a,
    Fut: Future<Output = Result<Vec<T>>> + Send + 'a,
{
    stream::once(fetch)
        .flat_map(|page| match page {
            Ok(items) => stream::iter(items).map(Ok).left_stream(),
            Err(e) => stream::once(future::ready(Err(e))).right_stream(),
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn numbers(after: Option<u32>, end: u32) -> Result<Page<u32, u32>> {
        let start = after.map_or(0, |a| a + 1);
        Ok(Page::of((start..end.min(start + 3)).collect(), 3, |n| *n))
    }

    #[tokio::test]
    async fn pages_are_fetched_in_order_until_a_short_page() {
        for end in [0, 2, 3, 7, 9] {
            let got: Vec<u32> = paged(None, |after| async move { numbers(after, end) })
                .map(|r| r.unwrap())
                .collect()
                .await;
            assert_eq!(got, (0..end).collect::<Vec<_>>(), "end {end}");
        }
        let resumed: Vec<u32> =
            paged(Some(4), |a| async move { numbers(a, 9) }).map(|r| r.unwrap()).collect().await;
        assert_eq!(resumed, vec![5, 6, 7, 8]);
    }

    #[tokio::test]
    async fn an_error_ends_the_listing() {
        let mut fetched = 0;
        let got: Vec<Result<u32>> = paged(None, |after| {
            fetched += 1;
            let failing = fetched == 2;
            async move {
                if failing {
                    Err(Error::invalid("page", "unreadable"))
                } else {
                    numbers(after, 100)
                }
            }
        })
        .collect()
        .await;
        assert_eq!(got.len(), 4);
        assert!(got[..3].iter().all(Result::is_ok) && got[3].is_err());
    }

    #[tokio::test]
    async fn a_single_page_yields_its_items_or_its_error() {
        let ok: Vec<Result<u8>> = single_page(async { Ok(vec![1, 2]) }).collect().await;
        assert_eq!(ok.into_iter().map(Result::unwrap).collect::<Vec<_>>(), vec![1, 2]);
        let err: Vec<Result<u8>> =
            single_page(async { Err(Error::invalid("x", "y")) }).collect().await;
        assert!(err.len() == 1 && err[0].is_err());
    }
}
