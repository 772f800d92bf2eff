//! A fixed-size log-linear latency histogram (microseconds, about 1.6 % relative precision).

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
/// Values up to 2^40 µs (12 days) are kept; larger ones land in the last bucket.
const GROUPS: usize = 41 - SUB_BITS as usize;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; (GROUPS + 1) * SUB].into_boxed_slice(),
            total: 0,
            max: 0,
            sum: 0,
        }
    }
}

fn index(value: u64) -> usize {
    if value < SUB as u64 {
        return value as usize;
    }
    let bits = 64 - value.leading_zeros(); // > SUB_BITS
    let shift = bits - SUB_BITS - 1;
    let group = (shift + 1) as usize;
    let sub = ((value >> shift) as usize) & (SUB - 1);
    (group.min(GROUPS) * SUB + sub).min((GROUPS + 1) * SUB - 1)
}

/// The largest value that maps to bucket `i`.
fn upper(i: usize) -> u64 {
    let group = i / SUB;
    let sub = (i % SUB) as u64;
    if group == 0 {
        return sub;
    }
    let shift = (group - 1) as u32;
    (((SUB as u64) | sub) << shift) + (1 << shift) - 1
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        self.counts[index(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
        self.sum += u128::from(value);
    }

    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0..=1): the upper edge of its bucket, capped by the maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values() {
        for v in [
            0,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            12345,
            1 << 30,
            u64::MAX >> 30,
        ] {
            let i = index(v);
            assert!(upper(i) >= v, "{v}");
            if i > 0 {
                assert!(upper(i - 1) < v, "{v}");
            }
            assert!(upper(i) - v <= v / 60 + 1, "{v} {}", upper(i));
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        let p50 = h.quantile(0.5);
        assert!((500..=508).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), 1000);
    }
}
