//! Paging of the control planes' listings. Both APIs page by id: the token
//! handed back (`nextToken` for HTTP APIs, `position` for REST APIs) is the
//! id of the last item given, and the next page starts after it.

use crate::rest_api::error::{RestError, RestResult};

/// The most items one page may hold, in both APIs.
pub const MAX_PAGE_SIZE: usize = 500;

/// A page size parameter: `default` when absent, otherwise a number from 1
/// to [`MAX_PAGE_SIZE`]; anything else is a `BadRequestException` saying
/// `invalid`.
pub fn page_size(text: Option<&str>, default: usize, invalid: &str) -> RestResult<usize> {
    match text {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| RestError::bad_request(invalid)),
    }
}

/// At most `size` of `items` (ordered by id) after the id `after`, and the
/// token of the next page when more remain.
pub fn page_after<T: Clone>(
    items: &[(String, T)],
    after: Option<&str>,
    size: usize,
) -> (Vec<T>, Option<String>) {
    let start = after.map_or(0, |after| {
        items.partition_point(|(id, _)| id.as_str() <= after)
    });
    let rest = &items[start.min(items.len())..];
    let taken: Vec<T> = rest.iter().take(size).map(|(_, v)| v.clone()).collect();
    let next = (size > 0 && rest.len() > size).then(|| rest[size - 1].0.clone());
    (taken, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(ids: &[&str]) -> Vec<(String, u32)> {
        ids.iter()
            .enumerate()
            .map(|(n, id)| (id.to_string(), u32::try_from(n).unwrap()))
            .collect()
    }

    #[test]
    fn a_full_page_hands_back_the_last_id_as_the_token() {
        let (page, next) = page_after(&items(&["a", "b", "c"]), None, 2);
        assert_eq!(page, [0, 1]);
        assert_eq!(next.as_deref(), Some("b"));
    }

    #[test]
    fn the_next_page_starts_after_the_token_and_the_last_has_none() {
        let (page, next) = page_after(&items(&["a", "b", "c"]), Some("b"), 2);
        assert_eq!(page, [2]);
        assert_eq!(next, None);
    }

    #[test]
    fn a_token_between_ids_starts_at_the_next_greater_id() {
        let (page, _) = page_after(&items(&["a", "c"]), Some("b"), 5);
        assert_eq!(page, [1]);
    }

    #[test]
    fn page_sizes_outside_one_to_five_hundred_are_refused() {
        assert_eq!(page_size(None, 25, "bad"), Ok(25));
        assert_eq!(page_size(Some("500"), 25, "bad"), Ok(500));
        for text in ["0", "501", "-1", "ten"] {
            assert_eq!(
                page_size(Some(text), 25, "bad"),
                Err(RestError::bad_request("bad"))
            );
        }
    }
}
