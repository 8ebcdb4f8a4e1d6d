//! Rolling batches (internals §7.3): an ordered list of allocations cut into consecutive groups
//! that act in parallel, one group after another.

/// Cut `order` into consecutive batches of `size`; the last may be shorter. `size < 1` or larger
/// than the list → one batch of all (`max_concurrent_starts: 0` = all at once). An empty order
/// gives no batches; a batch is never empty.
///
/// Updates use `max(max_concurrent_upgrades, 1)`, which the manifest parser already guarantees.
pub fn batches<T: Clone>(order: &[T], size: i64) -> Vec<Vec<T>> {
    if order.is_empty() {
        return Vec::new();
    }
    let size = usize::try_from(size).ok().filter(|s| (1..=order.len()).contains(s)).unwrap_or(order.len());
    order.chunks(size).map(<[T]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ten() -> Vec<u32> {
        (1..=10).collect()
    }

    fn sizes(b: &[Vec<u32>]) -> Vec<usize> {
        b.iter().map(Vec::len).collect()
    }

    #[test]
    fn three_over_ten() {
        let b = batches(&ten(), 3);
        assert_eq!(sizes(&b), vec![3, 3, 3, 1]);
        assert_eq!(b[3], vec![10]);
        assert_eq!(b[0], vec![1, 2, 3]);
    }

    #[test]
    fn edge_sizes() {
        assert_eq!(sizes(&batches(&ten(), 0)), vec![10], "0 = all at once");
        assert_eq!(sizes(&batches(&ten(), -4)), vec![10]);
        assert_eq!(sizes(&batches(&ten(), 1)), vec![1; 10]);
        assert_eq!(sizes(&batches(&ten(), 10)), vec![10]);
        assert_eq!(sizes(&batches(&ten(), 11)), vec![10]);
        assert_eq!(sizes(&batches(&ten(), i64::MAX)), vec![10]);
        assert_eq!(sizes(&batches(&ten(), 5)), vec![5, 5]);
        assert!(batches::<u32>(&[], 0).is_empty());
        assert!(batches::<u32>(&[], 3).is_empty());
    }

    proptest! {
        #[test]
        fn batches_concatenate_back_and_respect_the_size(order in proptest::collection::vec(any::<u16>(), 0..40), size in -3i64..50) {
            let b = batches(&order, size);
            prop_assert_eq!(b.concat(), order.clone());
            prop_assert!(b.iter().all(|batch| !batch.is_empty()));
            if size >= 1 && (size as usize) <= order.len() {
                let size = size as usize;
                prop_assert!(b.iter().all(|batch| batch.len() <= size));
                prop_assert!(b[..b.len() - 1].iter().all(|batch| batch.len() == size));
                prop_assert_eq!(b.len(), order.len().div_ceil(size));
            } else {
                prop_assert!(b.len() <= 1);
            }
        }
    }
}
