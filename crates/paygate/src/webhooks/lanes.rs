//! Lanes: how many webhook attempts go to one destination (an endpoint, or a merchant's
//! default URL) at once in this process, and where the deliveries that find them all busy wait.
//!
//! Guarantees:
//! - A destination never has more attempts in flight from this process than its current limit
//!   (after a cut, the attempts already in flight finish; no new one starts until fewer than
//!   the new limit are).
//! - The limit adapts per destination (AIMD, as TCP does): it starts at
//!   `WEBHOOK_ENDPOINT_CONCURRENCY`, grows while the destination answers 2xx within
//!   [`QUICK`] and its lanes are all in use, by one per answer until the first cut (slow
//!   start) and then by one per limit's worth of answers, and is halved (never below 1) when
//!   half a round's worth of answers are distress (a timeout, a connection error, a 5xx or a
//!   429). A round is a limit's worth of answers to attempts started in it; the answers to
//!   attempts started before a cut do not cut again. A destination that fails some attempts
//!   at random (a 500 now and then, a timeout) keeps its lanes — it needs more of them, not
//!   fewer, as each timeout holds one; one that fails most of them is cut round after round.
//!   Never above `WEBHOOK_ENDPOINT_MAX_CONCURRENCY`.
//! - A delivery finding every lane busy waits in the destination's FIFO (a fair semaphore's
//!   queue), in memory, holding no worker slot, and is attempted the moment a lane frees.
//!   At most `WEBHOOK_ENDPOINT_QUEUE` wait per destination; a delivery beyond that goes back
//!   to the store, held until the destination has drained ([`Destination::overflow`]), and
//!   the held ones are handed back in the order they came, half a queue at a time, as the
//!   waiting ones get their lanes. A held delivery whose process dies runs when its hold
//!   (the destination's estimated drain time, at least [`HOLD_MIN`]) runs out.
//! - The claim loop is paced ([`Lanes::ready`]): it claims more deliveries only while fewer
//!   than a worker's worth wait for destinations that are making progress. Deliveries waiting
//!   for a stalled destination (no answer for [`STALL_MIN`], or four times its usual answer
//!   time) do not count, so a destination that never answers cannot stop everyone else's
//!   deliveries from being claimed.
//!
//! Written here: the adaptive limit needs a semaphore whose size changes under waiters and
//! per-destination bookkeeping (latency, stalls, held deliveries) that no rate or concurrency
//! limiting crate keeps per key (governor limits rates, not concurrency; tower's limits are
//! per service and do not adapt).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// An answer slower than this does not grow the limit.
pub const QUICK: Duration = Duration::from_millis(500);
/// A destination with attempts in flight and no answer for this long (or four times its usual
/// answer time, if longer) is stalled: its waiting deliveries do not pace the claims.
pub const STALL_MIN: Duration = Duration::from_millis(250);
/// The shortest hold of a delivery sent back to the store.
pub const HOLD_MIN: Duration = Duration::from_secs(30);
/// The longest hold of a delivery sent back to the store.
pub const HOLD_MAX: Duration = Duration::from_secs(3600);
/// The longest the claim loop waits for room before claiming anyway.
const PACE_WAIT: Duration = Duration::from_millis(250);
/// How long a handed-back delivery counts as on its way.
const RETURNING_FOR: Duration = Duration::from_secs(5);
/// Held deliveries remembered per destination (the rest run when their hold ends).
const HELD_MAX: usize = 100_000;
/// Destinations kept with their state; idle ones beyond this are forgotten.
const KEYS_MAX: usize = 10_000;

/// The adaptive limit of one destination (pure; the lanes apply it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aimd {
    limit: usize,
    max: usize,
    /// Answers counted towards the next step up (after the first cut).
    credit: usize,
    /// Bumped when a round ends (by a cut, or a limit's worth of answers); an attempt
    /// remembers the round it started in.
    round: u64,
    /// Answers to attempts of the current round, and how many of them were distress.
    answers: usize,
    distress: usize,
    /// Whether the limit was ever cut (slow start ends at the first cut).
    cut_once: bool,
}

impl Aimd {
    /// Starts at `start`, never above `max` (nor below 1).
    pub fn new(start: usize, max: usize) -> Self {
        let max = max.max(1);
        Self {
            limit: start.clamp(1, max),
            max,
            credit: 0,
            round: 0,
            answers: 0,
            distress: 0,
            cut_once: false,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The round an attempt starting now belongs to.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// A quick 2xx answer while every lane was in use: the new limit.
    pub fn grow(&mut self) -> usize {
        if self.limit < self.max {
            if self.cut_once {
                self.credit += 1;
                if self.credit >= self.limit {
                    self.credit = 0;
                    self.limit += 1;
                }
            } else {
                self.limit += 1;
            }
        }
        self.limit
    }

    /// An answer to an attempt started in `round`, `distress` when it was a timeout, a
    /// connection error, a 5xx or a 429: the new limit, halved once half a round's worth of
    /// answers were distress (unchanged by the answers of attempts from an earlier round).
    pub fn answer(&mut self, round: u64, distress: bool) -> usize {
        if round != self.round {
            return self.limit;
        }
        self.answers += 1;
        self.distress += usize::from(distress);
        if self.distress >= self.limit.div_ceil(2) {
            self.limit = (self.limit / 2).max(1);
            self.credit = 0;
            self.cut_once = true;
            self.next_round();
        } else if self.answers >= self.limit {
            self.next_round();
        }
        self.limit
    }

    fn next_round(&mut self) {
        self.round += 1;
        self.answers = 0;
        self.distress = 0;
    }
}

/// How an attempt went, for the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Success,
    /// A timeout, a connection error, a 5xx or a 429: the destination is struggling.
    Congested,
    /// Anything else (another 4xx, a redirect): says nothing of its load.
    Other,
}

impl Answer {
    /// The class of an HTTP answer (`None`: no answer at all).
    pub fn of(code: Option<u16>) -> Self {
        match code {
            Some(200..=299) => Self::Success,
            None | Some(429 | 500..=599) => Self::Congested,
            Some(_) => Self::Other,
        }
    }
}

/// Settings of the lanes.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The limit a destination starts at.
    pub start: usize,
    /// The highest a limit grows to.
    pub max: usize,
    /// Deliveries waiting in memory per destination.
    pub queue: usize,
    /// Deliveries waiting for destinations that make progress, beyond which the claim loop
    /// waits (a worker's slots).
    pub pace: usize,
}

/// The lanes of every destination this process delivers to.
pub struct Lanes {
    settings: Settings,
    by_key: Mutex<HashMap<String, Arc<Destination>>>,
    /// Deliveries waiting, all destinations.
    waiting: AtomicUsize,
    /// Rung when a waiting delivery gets its lane (the claim loop may go on).
    moved: Notify,
}

impl Lanes {
    pub fn new(settings: Settings) -> Self {
        let settings = Settings {
            start: settings.start.max(1),
            max: settings.max.max(settings.start).max(1),
            queue: settings.queue.max(1),
            pace: settings.pace.max(1),
        };
        Self {
            settings,
            by_key: Mutex::default(),
            waiting: AtomicUsize::new(0),
            moved: Notify::new(),
        }
    }

    /// The settings in force (the start raises the maximum when above it).
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The destination `key`'s lanes.
    pub fn destination(self: &Arc<Self>, key: &str) -> Arc<Destination> {
        let mut by_key = lock(&self.by_key);
        if by_key.len() > KEYS_MAX {
            by_key.retain(|_, d| !d.idle());
        }
        by_key
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Destination {
                    lanes: Arc::new(Semaphore::new(self.settings.start.min(self.settings.max))),
                    all: self.clone(),
                    state: Mutex::new(State {
                        aimd: Aimd::new(self.settings.start, self.settings.max),
                        in_flight: 0,
                        waiting: 0,
                        debt: 0,
                        last_progress: Instant::now(),
                        latency: None,
                        held: VecDeque::new(),
                        held_ids: HashSet::new(),
                        returning: HashMap::new(),
                    }),
                })
            })
            .clone()
    }

    /// Resolves when the claim loop may claim more deliveries: fewer than `pace` wait for
    /// destinations that are not stalled, or after [`PACE_WAIT`] whatever waits.
    pub async fn ready(&self) {
        let deadline = Instant::now() + PACE_WAIT;
        loop {
            if self.waiting.load(Ordering::Relaxed) < self.settings.pace
                || self.paced_waiting() < self.settings.pace
            {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            // Re-checked every few ms: a destination stalls without anything ringing.
            let _ =
                tokio::time::timeout(left.min(Duration::from_millis(20)), self.moved.notified())
                    .await;
        }
    }

    /// Deliveries waiting for destinations that are not stalled.
    fn paced_waiting(&self) -> usize {
        let destinations: Vec<Arc<Destination>> = lock(&self.by_key).values().cloned().collect();
        let now = Instant::now();
        destinations
            .iter()
            .map(|d| {
                let s = lock(&d.state);
                if s.stalled(now) { 0 } else { s.waiting }
            })
            .sum()
    }

    /// Where destination `key` stands now; `None` when it has no state.
    pub fn stats(&self, key: &str) -> Option<Stats> {
        let d = lock(&self.by_key).get(key).cloned()?;
        let s = lock(&d.state);
        Some(Stats {
            limit: s.aimd.limit(),
            in_flight: s.in_flight,
            waiting: s.waiting,
            held: s.held.len(),
        })
    }
}

/// Where one destination stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Its current limit.
    pub limit: usize,
    /// Attempts in flight.
    pub in_flight: usize,
    /// Deliveries waiting in memory for a lane.
    pub waiting: usize,
    /// Deliveries held back in the store, to be handed back as it drains.
    pub held: usize,
}

/// One destination's lanes.
pub struct Destination {
    /// One permit per lane; fair, so waiting deliveries get lanes in the order they came.
    lanes: Arc<Semaphore>,
    all: Arc<Lanes>,
    state: Mutex<State>,
}

struct State {
    aimd: Aimd,
    in_flight: usize,
    waiting: usize,
    /// Permits to forget as they come back (a cut below the lanes in use).
    debt: usize,
    /// When an answer last came, or the first attempt of a busy spell started.
    last_progress: Instant,
    /// Answer time, moving average.
    latency: Option<Duration>,
    /// Deliveries sent back to the store while the queue was full, in the order they came,
    /// with the time each was due (they are handed back with it, so they keep their order).
    held: VecDeque<(String, DateTime<Utc>)>,
    held_ids: HashSet<String>,
    /// Held deliveries handed back and not arrived yet, with when: they count as waiting
    /// (for a few seconds: one claimed elsewhere never arrives here).
    returning: HashMap<String, Instant>,
}

impl State {
    fn stalled(&self, now: Instant) -> bool {
        let usual = self.latency.map_or(Duration::ZERO, |l| l * 4);
        self.in_flight > 0 && now.duration_since(self.last_progress) > usual.max(STALL_MIN)
    }
}

/// What a delivery finds at its destination.
pub enum Entry {
    /// A free lane: attempt now.
    Lane(Lane),
    /// Every lane busy: wait in the queue.
    Wait(Waiter),
    /// Every lane busy and the queue full: back to the store ([`Destination::overflow`]).
    Full,
}

impl Destination {
    /// Takes a free lane for the delivery `id`, or a place in the queue, or neither.
    pub fn enter(self: &Arc<Self>, id: &str) -> Entry {
        let mut s = lock(&self.state);
        s.returning.remove(id);
        if let Ok(permit) = self.lanes.clone().try_acquire_owned() {
            return Entry::Lane(self.started(&mut s, permit));
        }
        if s.waiting >= self.all.settings.queue {
            return Entry::Full;
        }
        s.waiting += 1;
        self.all.waiting.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("paygate_webhook_deliveries_waiting").increment(1.0);
        Entry::Wait(Waiter {
            destination: self.clone(),
        })
    }

    fn started(self: &Arc<Self>, s: &mut State, permit: OwnedSemaphorePermit) -> Lane {
        if s.in_flight == 0 {
            s.last_progress = Instant::now();
        }
        s.in_flight += 1;
        Lane {
            destination: self.clone(),
            permit: Some(permit),
            round: s.aimd.round(),
            started: Instant::now(),
            constrained: s.waiting > 0 || self.lanes.available_permits() == 0,
        }
    }

    /// Records that the delivery `id`, due at `due`, goes back to the store: returns until
    /// when it is held (the destination's estimated drain time, between [`HOLD_MIN`] and
    /// [`HOLD_MAX`]); it is handed back earlier, due at `due` again, once the queue has room
    /// ([`Lane::finish`]).
    pub fn overflow(&self, id: &str, due: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut s = lock(&self.state);
        let per = s.latency.unwrap_or(Duration::from_secs(1));
        let ahead = u32::try_from(s.waiting + s.held.len()).unwrap_or(u32::MAX);
        let lanes = u32::try_from(s.aimd.limit()).unwrap_or(1).max(1);
        let drain = (per.saturating_mul(ahead) / lanes).clamp(HOLD_MIN, HOLD_MAX);
        if s.held.len() < HELD_MAX && s.held_ids.insert(id.to_owned()) {
            s.held.push_back((id.to_owned(), due));
        }
        now + chrono::Duration::from_std(drain).unwrap_or(chrono::Duration::MAX)
    }

    fn idle(&self) -> bool {
        let s = lock(&self.state);
        s.in_flight == 0 && s.waiting == 0 && s.held.is_empty() && s.returning.is_empty()
    }
}

/// A place in a destination's queue.
pub struct Waiter {
    destination: Arc<Destination>,
}

impl Waiter {
    /// Waits for a lane (first come, first served).
    pub async fn lane(self) -> Lane {
        let permit = self.destination.lanes.clone().acquire_owned().await;
        let d = self.destination.clone();
        let mut s = lock(&d.state);
        // The semaphore is never closed.
        let permit = permit.ok();
        let mut lane = match permit {
            Some(p) => d.started(&mut s, p),
            None => Lane {
                destination: d.clone(),
                permit: None,
                round: s.aimd.round(),
                started: Instant::now(),
                constrained: true,
            },
        };
        lane.constrained = true;
        drop(s);
        drop(self);
        d.all.moved.notify_one();
        lane
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut s = lock(&self.destination.state);
        s.waiting = s.waiting.saturating_sub(1);
        self.destination.all.waiting.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("paygate_webhook_deliveries_waiting").decrement(1.0);
    }
}

/// An attempt's lane, held while the request is in flight.
pub struct Lane {
    destination: Arc<Destination>,
    permit: Option<OwnedSemaphorePermit>,
    round: u64,
    started: Instant,
    /// Whether the destination's lanes were all in use (or deliveries waited) as it started.
    constrained: bool,
}

impl Lane {
    /// Ends the attempt with `answer` (adapting the limit) and frees the lane. Returns the held
    /// deliveries to hand back to the queue now, oldest first, with their hold times.
    pub fn finish(mut self, answer: Answer) -> Vec<(String, DateTime<Utc>)> {
        let d = self.destination.clone();
        let mut s = lock(&d.state);
        let took = self.started.elapsed();
        s.latency = Some(match s.latency {
            Some(l) => (l * 4 + took) / 5,
            None => took,
        });
        s.last_progress = Instant::now();
        let before = s.aimd.limit();
        s.aimd.answer(self.round, answer == Answer::Congested);
        let after = match answer {
            Answer::Success if took < QUICK && self.constrained => s.aimd.grow(),
            _ => s.aimd.limit(),
        };
        if after < before {
            tracing::debug!(
                before,
                after,
                took_ms = took.as_millis(),
                "destination limit cut"
            );
        }
        if after > before {
            let add = after - before;
            let paid = add.min(s.debt);
            s.debt -= paid;
            d.lanes.add_permits(add - paid);
        } else if after < before {
            let cut = before - after;
            let forgotten = d.lanes.forget_permits(cut);
            s.debt += cut - forgotten;
        }
        self.release(&mut s);
        if s.held.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        s.returning
            .retain(|_, at| now.duration_since(*at) < RETURNING_FOR);
        let queue = d.all.settings.queue;
        let coming = s.waiting + s.returning.len();
        if coming >= queue / 2 {
            return Vec::new();
        }
        let n = (queue - coming).min(s.held.len());
        let back: Vec<(String, DateTime<Utc>)> = s.held.drain(..n).collect();
        for (id, _) in &back {
            s.held_ids.remove(id);
            s.returning.insert(id.clone(), now);
        }
        back
    }

    fn release(&mut self, s: &mut State) {
        if let Some(permit) = self.permit.take() {
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.debt > 0 {
                s.debt -= 1;
                permit.forget();
            }
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if self.permit.is_some() {
            let d = self.destination.clone();
            let mut s = lock(&d.state);
            self.release(&mut s);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `n` attempts of the current round, all distress or none.
    fn answers(a: &mut Aimd, n: usize, distress: bool) -> usize {
        let round = a.round();
        for _ in 0..n {
            a.answer(round, distress);
        }
        a.limit()
    }

    #[test]
    fn slow_start_grows_by_one_per_answer_until_the_first_cut() {
        let mut a = Aimd::new(4, 100);
        for _ in 0..10 {
            a.grow();
        }
        assert_eq!(a.limit(), 14);
        assert_eq!(answers(&mut a, 7, true), 7);
        // Then one step per limit's worth of answers.
        for _ in 0..6 {
            a.grow();
        }
        assert_eq!(a.limit(), 7);
        a.grow();
        assert_eq!(a.limit(), 8);
    }

    #[test]
    fn a_round_of_failures_halves_once() {
        let mut a = Aimd::new(16, 100);
        assert_eq!(
            answers(&mut a, 16, true),
            8,
            "attempts of one round cut once"
        );
        assert_eq!(answers(&mut a, 4, true), 4);
    }

    #[test]
    fn distress_in_fewer_than_half_a_rounds_answers_does_not_cut() {
        let mut a = Aimd::new(16, 100);
        // 7 of every 16 answers fail, round after round: a destination that fails at
        // random keeps its lanes.
        for _ in 0..100 {
            answers(&mut a, 7, true);
            answers(&mut a, 9, false);
        }
        assert_eq!(a.limit(), 16);
        // Half a round's worth cut it.
        assert_eq!(answers(&mut a, 8, true), 8);
        // Answers to attempts of a round before the cut count for nothing.
        let old = a.round() - 1;
        for _ in 0..100 {
            a.answer(old, true);
        }
        assert_eq!(a.limit(), 8);
    }

    #[test]
    fn the_limit_stays_between_one_and_the_maximum() {
        let mut a = Aimd::new(16, 20);
        for _ in 0..1000 {
            a.grow();
        }
        assert_eq!(a.limit(), 20);
        for _ in 0..10 {
            answers(&mut a, 20, true);
        }
        assert_eq!(a.limit(), 1);
        assert_eq!(Aimd::new(50, 20).limit(), 20);
        assert_eq!(Aimd::new(0, 20).limit(), 1);
    }

    #[test]
    fn answers_are_classed_by_what_they_say_of_load() {
        assert_eq!(Answer::of(Some(204)), Answer::Success);
        for code in [None, Some(429), Some(500), Some(503)] {
            assert_eq!(Answer::of(code), Answer::Congested, "{code:?}");
        }
        for code in [Some(301), Some(400), Some(404), Some(410)] {
            assert_eq!(Answer::of(code), Answer::Other, "{code:?}");
        }
    }

    fn lanes(start: usize, max: usize, queue: usize) -> Arc<Lanes> {
        Arc::new(Lanes::new(Settings {
            start,
            max,
            queue,
            pace: 4,
        }))
    }

    #[tokio::test]
    async fn a_busy_destination_queues_then_refuses_and_a_freed_lane_goes_to_the_first_waiting() {
        let l = lanes(1, 1, 2);
        let d = l.destination("ep_1");
        let Entry::Lane(first) = d.enter("x") else {
            panic!("a free lane")
        };
        let Entry::Wait(w1) = d.enter("x") else {
            panic!("queued")
        };
        let Entry::Wait(w2) = d.enter("x") else {
            panic!("queued")
        };
        assert!(matches!(d.enter("x"), Entry::Full));
        let second = tokio::spawn(w1.lane());
        tokio::task::yield_now().await;
        let third = tokio::spawn(w2.lane());
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        first.finish(Answer::Other);
        let second = second.await.unwrap();
        assert!(!third.is_finished(), "one lane: the next waits");
        second.finish(Answer::Other);
        third.await.unwrap().finish(Answer::Other);
        assert!(d.idle());
    }

    #[tokio::test]
    async fn a_cut_below_the_lanes_in_use_takes_effect_as_they_come_back() {
        let l = lanes(4, 4, 10);
        let d = l.destination("ep_1");
        let held: Vec<Lane> = (0..4)
            .map(|_| match d.enter("x") {
                Entry::Lane(lane) => lane,
                _ => panic!("four lanes"),
            })
            .collect();
        let mut held = held.into_iter();
        // Half a round's worth of distress: cut to two.
        held.next().unwrap().finish(Answer::Congested);
        assert_eq!(l.stats("ep_1").unwrap().limit, 4);
        held.next().unwrap().finish(Answer::Congested);
        assert_eq!(l.stats("ep_1").unwrap().limit, 2);
        // Two still in flight: no new lane until fewer than two are.
        assert!(matches!(d.enter("x"), Entry::Wait(_)));
        held.next().unwrap().finish(Answer::Other);
        let Entry::Lane(_again) = d.enter("x") else {
            panic!("one in flight, limit two: a lane")
        };
    }

    #[tokio::test]
    async fn held_deliveries_come_back_in_order_once_the_queue_has_room() {
        let l = lanes(1, 1, 2);
        let d = l.destination("ep_1");
        let Entry::Lane(first) = d.enter("x") else {
            panic!()
        };
        let now = Utc::now();
        let until = d.overflow("a", now, now);
        assert!(until >= now + chrono::Duration::seconds(30));
        d.overflow("b", now, now);
        d.overflow("a", now, now);
        let back = first.finish(Answer::Success);
        let ids: Vec<&str> = back.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[tokio::test]
    async fn the_claims_wait_for_waiting_deliveries_of_live_destinations_only() {
        let l = lanes(1, 1, 100);
        let d = l.destination("ep_1");
        let Entry::Lane(_busy) = d.enter("x") else {
            panic!()
        };
        let waiting: Vec<Entry> = (0..4).map(|_| d.enter("x")).collect();
        assert!(waiting.iter().all(|e| matches!(e, Entry::Wait(_))));
        let started = Instant::now();
        l.ready().await;
        // The destination stalls after 250 ms without an answer: the claims go on.
        let waited = started.elapsed();
        assert!(waited >= STALL_MIN, "{waited:?}");
        assert!(
            waited < PACE_WAIT + Duration::from_millis(200),
            "{waited:?}"
        );
    }
}
