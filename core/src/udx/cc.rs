//! Congestion control: a packet-timed BBR (v1 style) with pacing, after udx-native's
//! (spec `udx.md` §4). Purely sender-local: any sane controller interoperates.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const HIGH_GAIN: f64 = 2.885_39;
const DRAIN_GAIN: f64 = 1.0 / HIGH_GAIN;
const PROBE_BW_GAINS: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
const PROBE_BW_CWND_GAIN: f64 = 2.0;
const PACING_MARGIN: f64 = 0.99;
const BW_WINDOW_ROUNDS: u64 = 10;
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
const MIN_CWND: u32 = 4;
const INITIAL_CWND: u32 = 10;
const FULL_BW_THRESH: f64 = 1.25;
const FULL_BW_ROUNDS: u32 = 3;

/// The controller's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exponential search for the bottleneck bandwidth.
    Startup,
    /// Draining the queue built in startup.
    Drain,
    /// Steady state, cycling the pacing gain.
    ProbeBw,
    /// Briefly shrinking the window to re-measure the minimum RTT.
    ProbeRtt,
}

/// One delivery-rate sample (taken per ACK from the most recently sent delivered packet).
#[derive(Debug, Clone, Copy)]
pub struct RateSample {
    /// Bytes delivered over the interval.
    pub delivered: u64,
    /// The interval.
    pub interval: Duration,
    /// `delivered` count when the sampled packet was sent (for round counting).
    pub prior_delivered: u64,
    /// Whether the sender was application-limited when the packet was sent.
    pub app_limited: bool,
    /// RTT of the sampled packet, when it was never retransmitted (Karn).
    pub rtt: Option<Duration>,
}

/// BBR state.
#[derive(Debug)]
pub struct Bbr {
    mode: Mode,
    cwnd: u32,
    prior_cwnd: u32,
    pacing_rate: f64, // bytes per second
    bw_samples: VecDeque<(u64, f64)>,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Instant,
    round: u64,
    next_round_delivered: u64,
    round_start: bool,
    full_bw: f64,
    full_bw_count: u32,
    full_bw_reached: bool,
    cycle_index: usize,
    cycle_stamp: Instant,
    probe_rtt_done: Option<Instant>,
    probe_rtt_round_done: bool,
    in_recovery: bool,
    recovery_round_end: u64,
    packet_conservation: bool,
    delivered_total: u64,
    after_rto: bool,
}

impl Bbr {
    /// A controller in STARTUP with 10 packets of window.
    pub fn new(now: Instant, mss: usize) -> Self {
        Self {
            mode: Mode::Startup,
            cwnd: INITIAL_CWND,
            prior_cwnd: INITIAL_CWND,
            // cwnd / 1 ms × mss × high gain × margin, as udx-native before the first RTT sample
            pacing_rate: f64::from(INITIAL_CWND) * mss as f64 * 1000.0 * HIGH_GAIN * PACING_MARGIN,
            bw_samples: VecDeque::new(),
            min_rtt: None,
            min_rtt_stamp: now,
            round: 0,
            next_round_delivered: 0,
            round_start: false,
            full_bw: 0.0,
            full_bw_count: 0,
            full_bw_reached: false,
            cycle_index: 0,
            cycle_stamp: now,
            probe_rtt_done: None,
            probe_rtt_round_done: false,
            in_recovery: false,
            recovery_round_end: 0,
            packet_conservation: false,
            delivered_total: 0,
            after_rto: false,
        }
    }

    /// Congestion window in packets.
    pub fn cwnd(&self) -> u32 {
        if self.mode == Mode::ProbeRtt {
            self.cwnd.min(MIN_CWND)
        } else {
            self.cwnd
        }
    }

    /// Pacing rate in bytes per second.
    pub fn pacing_rate(&self) -> f64 {
        self.pacing_rate
    }

    /// Bandwidth estimate (bytes/s), min RTT, saved window (diagnostics).
    pub fn debug(&self) -> String {
        format!(
            "bw={:.0} min_rtt={:?} prior_cwnd={} rec={} after_rto={} full={} round={}",
            self.bw(),
            self.min_rtt,
            self.prior_cwnd,
            self.in_recovery,
            self.after_rto,
            self.full_bw_reached,
            self.round
        )
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn bw(&self) -> f64 {
        self.bw_samples.iter().map(|&(_, b)| b).fold(0.0, f64::max)
    }

    fn bdp_packets(&self, mss: usize, gain: f64) -> u32 {
        match self.min_rtt {
            Some(rtt) if self.bw() > 0.0 => {
                let bdp = self.bw() * rtt.as_secs_f64().max(0.001) / mss as f64;
                ((bdp * gain).ceil() as u32).max(1)
            }
            _ => (f64::from(INITIAL_CWND) * gain) as u32,
        }
    }

    fn pacing_gain(&self) -> f64 {
        match self.mode {
            Mode::Startup => HIGH_GAIN,
            Mode::Drain => DRAIN_GAIN,
            Mode::ProbeBw => PROBE_BW_GAINS[self.cycle_index],
            Mode::ProbeRtt => 1.0,
        }
    }

    fn cwnd_gain(&self) -> f64 {
        match self.mode {
            Mode::Startup | Mode::Drain => HIGH_GAIN,
            Mode::ProbeBw => PROBE_BW_CWND_GAIN,
            Mode::ProbeRtt => 1.0,
        }
    }

    /// Called once the first RTT sample exists (udx-native recomputes the initial rate).
    pub fn on_first_rtt(&mut self, srtt: Duration, mss: usize) {
        if self.bw_samples.is_empty() {
            let ms = srtt.as_secs_f64().max(0.001);
            self.pacing_rate = f64::from(self.cwnd) * mss as f64 / ms * HIGH_GAIN * PACING_MARGIN;
        }
    }

    /// Entering fast recovery: packet conservation for one round.
    pub fn on_enter_recovery(&mut self, inflight: u32, acked: u32) {
        if !self.in_recovery {
            self.in_recovery = true;
            self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
            self.cwnd = (inflight + acked.max(1)).max(MIN_CWND);
            self.packet_conservation = true;
            self.recovery_round_end = self.round + 1;
        }
    }

    /// Leaving recovery: restore the saved window.
    pub fn on_exit_recovery(&mut self) {
        self.after_rto = false;
        if self.in_recovery {
            self.in_recovery = false;
            self.packet_conservation = false;
            self.cwnd = self.cwnd.max(self.prior_cwnd);
        }
    }

    /// A retransmission timeout: save the window and collapse to what is in flight plus one.
    pub fn on_rto(&mut self, inflight: u32) {
        self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
        self.cwnd = (inflight + 1).max(1);
        self.after_rto = true;
        self.full_bw = 0.0;
        self.full_bw_count = 0;
        self.round_start = true;
    }

    /// Updates the model for one ACK.
    #[allow(clippy::too_many_arguments)]
    pub fn on_ack(
        &mut self,
        now: Instant,
        mss: usize,
        delivered_total: u64,
        acked_packets: u32,
        lost_packets: u32,
        inflight: u32,
        sample: Option<RateSample>,
    ) {
        self.delivered_total = delivered_total;
        self.round_start = false;
        if let Some(s) = sample {
            if s.prior_delivered >= self.next_round_delivered {
                self.next_round_delivered = delivered_total;
                self.round += 1;
                self.round_start = true;
                if self.packet_conservation && self.round >= self.recovery_round_end {
                    self.packet_conservation = false;
                }
            }
            let interval = s.interval.as_secs_f64();
            if interval > 0.0 && s.delivered > 0 {
                let bw = s.delivered as f64 / interval;
                // Samples limited by our own loss-recovery window say nothing about the path:
                // like app-limited ones they may only raise the estimate.
                let limited = s.app_limited || self.in_recovery || self.after_rto;
                if !limited || bw >= self.bw() {
                    self.push_bw(bw);
                }
            }
            let expired = now.saturating_duration_since(self.min_rtt_stamp) > MIN_RTT_WINDOW;
            if let Some(rtt) = s
                .rtt
                .map(|r| r.max(Duration::from_millis(1)))
                .filter(|&r| self.min_rtt.is_none_or(|m| r <= m) || expired)
            {
                if expired && self.mode != Mode::ProbeRtt && self.min_rtt.is_some() {
                    self.enter_probe_rtt();
                }
                self.min_rtt = Some(rtt);
                self.min_rtt_stamp = now;
            }
            if self.round_start && !s.app_limited && !self.full_bw_reached {
                let bw = self.bw();
                if bw >= self.full_bw * FULL_BW_THRESH {
                    self.full_bw = bw;
                    self.full_bw_count = 0;
                } else {
                    self.full_bw_count += 1;
                    if self.full_bw_count >= FULL_BW_ROUNDS {
                        self.full_bw_reached = true;
                    }
                }
            }
        }
        self.update_mode(now, mss, inflight, lost_packets);
        self.update_pacing(mss);
        self.update_cwnd(mss, acked_packets, lost_packets, inflight);
    }

    fn push_bw(&mut self, bw: f64) {
        match self.bw_samples.back_mut() {
            Some((r, b)) if *r == self.round => *b = b.max(bw),
            _ => self.bw_samples.push_back((self.round, bw)),
        }
        while self
            .bw_samples
            .front()
            .is_some_and(|&(r, _)| r + BW_WINDOW_ROUNDS <= self.round)
        {
            self.bw_samples.pop_front();
        }
    }

    fn enter_probe_rtt(&mut self) {
        self.mode = Mode::ProbeRtt;
        self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
        self.probe_rtt_done = None;
        self.probe_rtt_round_done = false;
    }

    fn update_mode(&mut self, now: Instant, mss: usize, inflight: u32, lost: u32) {
        match self.mode {
            Mode::Startup if self.full_bw_reached => self.mode = Mode::Drain,
            Mode::Drain if inflight <= self.bdp_packets(mss, 1.0) => {
                self.mode = Mode::ProbeBw;
                self.cycle_index = 4;
                self.cycle_stamp = now;
            }
            Mode::ProbeBw => {
                let min_rtt = self.min_rtt.unwrap_or(Duration::from_millis(1));
                let elapsed = now.saturating_duration_since(self.cycle_stamp) > min_rtt;
                let gain = PROBE_BW_GAINS[self.cycle_index];
                let advance = if gain > 1.0 {
                    elapsed && (lost > 0 || inflight >= self.bdp_packets(mss, gain))
                } else if gain < 1.0 {
                    elapsed || inflight <= self.bdp_packets(mss, 1.0)
                } else {
                    elapsed
                };
                if advance {
                    self.cycle_index = (self.cycle_index + 1) % PROBE_BW_GAINS.len();
                    self.cycle_stamp = now;
                }
            }
            Mode::ProbeRtt => {
                if self.probe_rtt_done.is_none() && inflight <= MIN_CWND {
                    self.probe_rtt_done = Some(now + PROBE_RTT_TIME);
                    self.next_round_delivered = self.delivered_total;
                } else if let Some(done) = self.probe_rtt_done {
                    if self.round_start {
                        self.probe_rtt_round_done = true;
                    }
                    if self.probe_rtt_round_done && now >= done {
                        self.min_rtt_stamp = now;
                        self.cwnd = self.cwnd.max(self.prior_cwnd);
                        self.mode = if self.full_bw_reached {
                            Mode::ProbeBw
                        } else {
                            Mode::Startup
                        };
                        self.cycle_stamp = now;
                    }
                }
            }
            _ => {}
        }
    }

    fn update_pacing(&mut self, _mss: usize) {
        let bw = self.bw();
        if bw <= 0.0 {
            return;
        }
        let rate = (bw * self.pacing_gain() * PACING_MARGIN).max(1000.0);
        if self.full_bw_reached || rate > self.pacing_rate {
            self.pacing_rate = rate;
        }
    }

    fn update_cwnd(&mut self, mss: usize, acked: u32, lost: u32, inflight: u32) {
        if acked == 0 && lost == 0 {
            return;
        }
        if lost > 0 {
            self.cwnd = self.cwnd.saturating_sub(lost).max(1);
        }
        if self.packet_conservation {
            self.cwnd = self.cwnd.max(inflight + acked);
        } else {
            let target = self.bdp_packets(mss, self.cwnd_gain());
            if self.full_bw_reached {
                self.cwnd = (self.cwnd + acked).min(target);
            } else if self.cwnd < target || self.delivered_total < 10 * mss as u64 {
                self.cwnd += acked;
            }
        }
        self.cwnd = self.cwnd.max(MIN_CWND);
    }
}
