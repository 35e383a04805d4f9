//! The breaker's state word: closed, open (until when), half-open (with its
//! probes in flight and its generation) or isolated, in one `AtomicU64`;
//! and the generations that tell the probes of one half-open state from
//! those of an earlier one.

// The state word. The low two bits are the state; the rest depends on it:
//
// - closed: nothing (the word is 0, so admission compares with a constant);
// - open: the timestamp at which the break ends, in bits 2..64;
// - half-open: the probes in flight in bits 2..16, and in bits 16..64 the
//   generation: the timestamp at which the half-open state began, modulo
//   2^48 ns (78 hours), or one past the previous generation if the clock has
//   not moved past it (`next_generation`). A probe's permit remembers its
//   generation, so that a probe left over from an earlier half-open state
//   does nothing to a later one. Measuring how long ago the state began modulo 78 hours is enough:
//   a state that lasts longer with every probe hung can only be held up by
//   one more `break_for` each 78 hours;
// - isolated: nothing.
//
// Every change of state is one compare-and-swap of the whole word from the
// value it was read as, so two threads cannot both make the same change: one
// trip, one Open -> HalfOpen, one probe result that closes or reopens, and
// probe slots counted exactly. The window is a separate structure; nothing
// about the state is inferred from it after the fact, so the two need no
// common ordering beyond what each change of state reads for itself, and
// one: closing empties the window before its swap to closed (release), so a
// call admitted by a load (acquire) that sees closed is counted after the
// reset, never wiped by it.
pub(super) const TAG: u64 = 0b11;
pub(super) const CLOSED: u64 = 0;
pub(super) const OPEN: u64 = 1;
pub(super) const HALF_OPEN: u64 = 2;
pub(super) const ISOLATED: u64 = 3;
pub(super) const PROBES_SHIFT: u32 = 2;
pub(super) const PROBES_MAX: u32 = 0x3FFF;
pub(super) const GEN_SHIFT: u32 = 16;
pub(super) const GEN_MASK: u64 = (1 << 48) - 1;

/// The least time after which probes in flight are presumed lost.
pub(super) const LOST_PROBE_MIN: u64 = 1_000_000_000;

/// The most: half the range of a generation.
pub(super) const LOST_PROBE_MAX: u64 = GEN_MASK / 2;

/// The generation of a permit that is not a probe.
pub(super) const NOT_PROBE: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Closed,
    Open { until: u64 },
    HalfOpen { gen: u64, probes: u32 },
    Isolated,
}

impl State {
    pub(super) const fn decode(word: u64) -> State {
        match word & TAG {
            CLOSED => State::Closed,
            OPEN => State::Open { until: word >> 2 },
            HALF_OPEN => State::HalfOpen {
                gen: word >> GEN_SHIFT,
                probes: ((word >> PROBES_SHIFT) & PROBES_MAX as u64) as u32,
            },
            _ => State::Isolated,
        }
    }

    pub(super) const fn open(until: u64) -> u64 {
        OPEN | (until << 2)
    }

    pub(super) const fn half_open(gen: u64, probes: u32) -> u64 {
        HALF_OPEN | ((probes as u64) << PROBES_SHIFT) | (gen << GEN_SHIFT)
    }

    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(super) const fn name(word: u64) -> &'static str {
        match word & TAG {
            CLOSED => "closed",
            OPEN => "open",
            HALF_OPEN => "half-open",
            _ => "isolated",
        }
    }
}

/// The generation of a half-open state that begins at `now`.
pub(super) const fn generation(now: u64) -> u64 {
    now & GEN_MASK
}

/// How long ago the half-open state of generation `gen` began, modulo 2^48
/// ns. A `now` read before the state began (by a thread that read the clock,
/// then lost the race to begin it; or one whose clock is behind) is 0 rather
/// than nearly 2^48: differences over half the range are negative.
pub(super) const fn since(gen: u64, now: u64) -> u64 {
    let elapsed = now.wrapping_sub(gen) & GEN_MASK;
    if elapsed > GEN_MASK / 2 {
        0
    } else {
        elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::TIME_MAX;

    #[test]
    fn state_words_round_trip() {
        let until = TIME_MAX;
        assert_eq!(State::decode(State::open(until)), State::Open { until });
        let gen = GEN_MASK;
        assert_eq!(
            State::decode(State::half_open(gen, PROBES_MAX)),
            State::HalfOpen {
                gen,
                probes: PROBES_MAX
            }
        );
        assert_eq!(State::decode(CLOSED), State::Closed);
        assert_eq!(State::decode(ISOLATED), State::Isolated);
    }

    #[test]
    fn generations_measure_time_modulo_their_width() {
        let t = GEN_MASK - 7; // just before a wrap of the generation
        let gen = generation(t);
        assert_eq!(since(gen, t + 5_000), 5_000);
        assert_eq!(since(gen, t), 0);
        assert_eq!(since(gen, t - 5_000), 0, "a reading from before it began");
    }
}
