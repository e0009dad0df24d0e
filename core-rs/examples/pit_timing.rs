//! Times the point-in-time join kernel and `key_partitions` on seeded data, without Python or
//! Parquet in the way, so a change to `pit.rs` can be compared before and after on one machine:
//!
//! ```text
//! cargo run --release --example pit_timing -- [repeats]      # default 5; prints medians
//! ```
//!
//! Cases: one int64 key (with nulls, created timestamps, a ttl), one string key, a composite
//! (int64, string) key, a small entity frame against a large source (the filter path), and the
//! partition ids of int64 and string keys.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use _core::columns::bytes_column;
use _core::pit::{
    key_partitions, point_in_time_join, EntitySide, KeyColumn, KeyValues, PitOptions, Side,
    SourceSide, TimeColumn,
};
use arrow::array::{Array, Int64Array, StringArray};
use arrow::buffer::NullBuffer;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

const DAY_NS: i64 = 86_400_000_000_000;

/// One side: int keys (1 % null), string keys, event and created timestamps.
struct Frame {
    ints: Int64Array,
    strings: StringArray,
    ts: Int64Array,
    created: Int64Array,
}

fn frame(rng: &mut Rng, rows: usize, keys: u64, days: i64) -> Frame {
    let ints: Int64Array = (0..rows)
        .map(|_| (rng.below(100) > 0).then(|| rng.below(keys)))
        .collect();
    let strings: StringArray = (0..rows)
        .map(|_| Some(format!("driver-{:08}", rng.below(keys))))
        .collect();
    let ts: Int64Array = (0..rows)
        .map(|_| Some(rng.below((days * DAY_NS) as u64)))
        .collect();
    let created: Int64Array = (0..rows)
        .map(|_| Some(rng.below((days * DAY_NS) as u64)))
        .collect();
    Frame {
        ints,
        strings,
        ts,
        created,
    }
}

// --- the adapter from Arrow arrays to the kernel's columns (the only API-dependent part) ----

fn validity(array: &dyn Array) -> Option<&NullBuffer> {
    array.nulls().filter(|n| n.null_count() > 0)
}

fn int_key<'a>(name: &'a str, a: &'a Int64Array) -> KeyColumn<'a> {
    KeyColumn {
        name,
        values: KeyValues::Int64(a.values()),
        validity: validity(a),
    }
}

fn str_key<'a>(name: &'a str, a: &'a StringArray) -> KeyColumn<'a> {
    KeyColumn {
        name,
        values: KeyValues::Bytes(bytes_column(a, true).expect("strings")),
        validity: validity(a),
    }
}

fn times<'a>(name: &'a str, a: &'a Int64Array) -> TimeColumn<'a> {
    TimeColumn {
        name,
        values: a.values(),
        validity: validity(a),
    }
}

// ---------------------------------------------------------------------------------------------

fn median_ms(repeats: usize, mut run: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::with_capacity(repeats);
    let mut check = 0;
    for _ in 0..repeats {
        let start = Instant::now();
        check = run();
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], check)
}

fn matched(indices: &[u64]) -> usize {
    indices.iter().filter(|&&i| i != u64::MAX).count()
}

fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .map_or(5, |a| a.parse().expect("repeats"));
    let mut rng = Rng(0x5eed_0014);
    let source = frame(&mut rng, 4_000_000, 200_000, 30);
    let entity = frame(&mut rng, 4_000_000, 220_000, 31);
    let small = frame(&mut rng, 20_000, 220_000, 31);
    let ttl = PitOptions {
        ttl_ns: 7 * DAY_NS,
        filter_by_created_timestamp: false,
    };

    let report = |case: &str, (ms, check): (f64, usize)| {
        println!("{case:<40} {ms:>9.1} ms  (check {check})");
    };

    let sk = [int_key("driver_id", &source.ints)];
    let ek = [int_key("driver_id", &entity.ints)];
    let src = SourceSide {
        keys: &sk,
        event_timestamps: times("ts", &source.ts),
        created_timestamps: Some(times("created", &source.created)),
    };
    let ent = EntitySide {
        keys: &ek,
        timestamps: times("ts", &entity.ts),
    };
    report(
        "join int64 key 4M x 4M (created, ttl)",
        median_ms(repeats, || {
            matched(&point_in_time_join(&ent, &src, ttl).unwrap())
        }),
    );

    let sks = [str_key("driver", &source.strings)];
    let eks = [str_key("driver", &entity.strings)];
    let src_s = SourceSide {
        keys: &sks,
        created_timestamps: None,
        ..src
    };
    let ent_s = EntitySide { keys: &eks, ..ent };
    report(
        "join string key 4M x 4M (ttl)",
        median_ms(repeats, || {
            matched(&point_in_time_join(&ent_s, &src_s, ttl).unwrap())
        }),
    );

    let skc = [
        int_key("driver_id", &source.ints),
        str_key("driver", &source.strings),
    ];
    let ekc = [
        int_key("driver_id", &entity.ints),
        str_key("driver", &entity.strings),
    ];
    let src_c = SourceSide { keys: &skc, ..src };
    let ent_c = EntitySide { keys: &ekc, ..ent };
    report(
        "join (int64, string) key 4M x 4M",
        median_ms(repeats, || {
            matched(&point_in_time_join(&ent_c, &src_c, ttl).unwrap())
        }),
    );

    let eks_small = [int_key("driver_id", &small.ints)];
    let ent_small = EntitySide {
        keys: &eks_small,
        timestamps: times("ts", &small.ts),
    };
    report(
        "join int64 key 20k x 4M (filter path)",
        median_ms(repeats, || {
            matched(&point_in_time_join(&ent_small, &src, ttl).unwrap())
        }),
    );

    report(
        "key_partitions int64 4M",
        median_ms(repeats, || {
            key_partitions(Side::Source, &sk, 16).unwrap().len()
        }),
    );
    report(
        "key_partitions string 4M",
        median_ms(repeats, || {
            key_partitions(Side::Source, &sks, 16).unwrap().len()
        }),
    );
}
