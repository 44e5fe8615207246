//! The account: the kernel's own capital figure (K) against the exchange's (E),
//! and the fee model that lets K follow E before fees are settled.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::documents::takes_version;
use crate::error::{check_derived, check_number, InputError, MAX_DERIVED, MAX_MAGNITUDE};
use crate::order::Id;
use crate::outcome::Details;
use crate::slot::Exposure;
use crate::time::Timestamp;
use crate::types::{DiagnosticCode, OrderType};

/// Fills whose actual fee is still to come; the oldest are assumed settled at
/// their prediction once this many wait, so memory stays bounded.
pub const PENDING_FEE_CAPACITY: usize = 65_536;
/// Account event ids remembered for idempotency.
pub const SEEN_ACCOUNT_EVENTS: usize = 4_096;
/// Weight of the newest sample in the fee calibration's moving average.
pub const CALIBRATION_ALPHA: f64 = 0.2;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeConfig {
    pub taker_rate: f64,
    pub maker_rate: f64,
    pub lot_step: f64,
    pub tick_size: f64,
    pub funding_interval_secs: u64,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig {
            taker_rate: 0.0,
            maker_rate: 0.0,
            lot_step: 0.0,
            tick_size: 0.0,
            funding_interval_secs: 28_800,
        }
    }
}

/// A partial update of the exchange config: unset keys keep their value.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeConfigUpdate {
    pub taker_rate: Option<f64>,
    pub maker_rate: Option<f64>,
    pub lot_step: Option<f64>,
    pub tick_size: Option<f64>,
    pub funding_interval_secs: Option<u64>,
}

fn round_to_step(value: f64, step: f64) -> f64 {
    let rounded = (value / step).round() * step;
    if step > 0.0 && rounded.is_finite() {
        rounded
    } else {
        value
    }
}

/// The smallest lot step or tick size taken (0 means no rounding): below it
/// a quotient by the step overflows long before any exchange's grid.
pub const MIN_STEP: f64 = 1e-12;
/// How far a calibration may put the fee model from the exchange's schedule,
/// either way; beyond it the "expected" fee is noise (a price or size near
/// zero), not a schedule to correct.
pub const MAX_CALIBRATION_RATIO: f64 = 1e6;

/// A calibration ratio the kernel keeps: finite and within ±`MAX_CALIBRATION_RATIO`.
fn check_calibration_ratio(field: &str, ratio: f64) -> Result<f64, InputError> {
    let ratio = check_number(field, ratio, -MAX_CALIBRATION_RATIO, false)?;
    if ratio > MAX_CALIBRATION_RATIO {
        return Err(InputError::new(
            field,
            ratio,
            format!("must be within ±{MAX_CALIBRATION_RATIO:e}"),
        ));
    }
    Ok(ratio)
}

impl ExchangeConfig {
    /// The fee the exchange's schedule charges for one execution, before calibration.
    pub fn fee(&self, price: f64, qty: f64, order_type: OrderType) -> f64 {
        let rate = match order_type {
            OrderType::Market => self.taker_rate,
            OrderType::Limit => self.maker_rate,
        };
        round_to_step(qty.abs(), self.lot_step) * round_to_step(price.abs(), self.tick_size) * rate
    }

    pub fn updated(&self, u: &ExchangeConfigUpdate) -> Result<ExchangeConfig, InputError> {
        let new = ExchangeConfig {
            taker_rate: u.taker_rate.unwrap_or(self.taker_rate),
            maker_rate: u.maker_rate.unwrap_or(self.maker_rate),
            lot_step: u.lot_step.unwrap_or(self.lot_step),
            tick_size: u.tick_size.unwrap_or(self.tick_size),
            funding_interval_secs: u.funding_interval_secs.unwrap_or(self.funding_interval_secs),
        };
        new.check()?;
        Ok(new)
    }

    /// Rates are fractions below 1; steps are 0 (no rounding) or at least `MIN_STEP`.
    pub fn check(&self) -> Result<(), InputError> {
        for (field, v) in [("taker_rate", self.taker_rate), ("maker_rate", self.maker_rate)] {
            check_number(field, v, 0.0, false)?;
            if v >= 1.0 {
                return Err(InputError::new(
                    field,
                    v,
                    "is a fraction of notional (0.0005 = 0.05 %) and must be below 1",
                ));
            }
        }
        for (field, v) in [("lot_step", self.lot_step), ("tick_size", self.tick_size)] {
            check_number(field, v, 0.0, false)?;
            if v > 0.0 && v < MIN_STEP {
                return Err(InputError::new(
                    field,
                    v,
                    format!("must be 0 (no rounding) or at least {MIN_STEP:e}"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountEventKind {
    FillSettled,
    AccountUpdate,
    FundingFee,
}

/// An event of the exchange's account stream.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEvent {
    pub kind: AccountEventKind,
    pub event_id: String,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    /// FILL_SETTLED: the venue event id of the fill whose fee this settles.
    #[serde(default)]
    pub fill_id: String,
    /// FILL_SETTLED: the fee actually charged (negative for a rebate).
    #[serde(default)]
    pub fee: Option<f64>,
    /// ACCOUNT_UPDATE figures.
    #[serde(default)]
    pub wallet_balance: Option<f64>,
    #[serde(default)]
    pub available_margin: Option<f64>,
    #[serde(default)]
    pub used_margin: Option<f64>,
    #[serde(default)]
    pub maint_margin: Option<f64>,
    /// FUNDING_FEE: received (positive) or paid (negative).
    #[serde(default)]
    pub amount: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExchangeFigures {
    pub wallet_balance: f64,
    pub available_margin: f64,
    pub used_margin: f64,
    pub maint_margin: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub seed_capital: f64,
    pub k_realized_pnl: f64,
    pub k_fees_paid: f64,
    pub k_funding_net: f64,
    pub exchange: Option<ExchangeFigures>,
    pub event_seq: u64,
    pub config: ExchangeConfig,
    pub calibration_ratio: f64,
    pub calibration_samples: u64,
    /// (fill id, predicted fee), oldest first; a fill id may appear twice
    /// (two fills the venue gave one id) and settles oldest first.
    pub pending_fees: VecDeque<(Id, f64)>,
    pub seen_event_ids: VecDeque<String>,
    pub version: u64,
    #[serde(skip)]
    seen_lookup: HashSet<String>,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            seed_capital: 0.0,
            k_realized_pnl: 0.0,
            k_fees_paid: 0.0,
            k_funding_net: 0.0,
            exchange: None,
            event_seq: 0,
            config: ExchangeConfig::default(),
            calibration_ratio: 1.0,
            calibration_samples: 0,
            pending_fees: VecDeque::new(),
            seen_event_ids: VecDeque::new(),
            version: 0,
            seen_lookup: HashSet::new(),
        }
    }
}

/// The account as readers see it: K, E, how they compare, and open exposure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountView {
    pub seed_capital: f64,
    pub k_capital: f64,
    pub k_realized_pnl: f64,
    pub k_fees_paid: f64,
    pub k_funding_net: f64,
    pub e_known: bool,
    pub e_wallet_balance: f64,
    pub e_available_margin: f64,
    pub e_used_margin: f64,
    pub e_maint_margin: f64,
    pub available_capital: f64,
    pub reconcile_status: &'static str,
    pub reconcile_delta: f64,
    pub reconcile_explanation: String,
    pub unsettled_fills: usize,
    pub unsettled_fees: f64,
    pub event_seq: u64,
    pub calibration_ratio: f64,
    pub calibration_samples: u64,
    pub exchange_config: ExchangeConfig,
    pub capital: f64,
    pub equity: f64,
    pub realized_pnl: f64,
    pub unrealized_pnl: f64,
    pub open_positions: i64,
    pub open_notional: f64,
    pub leverage: f64,
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Calibration {
    pub expected_fee: f64,
    pub actual_fee: f64,
    pub ratio: f64,
    pub deviation_pct: f64,
    pub calibration_status: &'static str,
    pub calibration_ratio: f64,
    pub calibration_samples: u64,
}

/// The answer to an account event: applied or not, why, and the account after.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountAnswer {
    pub applied: bool,
    pub diagnostic_code: DiagnosticCode,
    pub details: Details,
}

/// The account figures `dita.accounts` carries, as a restarted kernel reads
/// them back: when the projection is newer than the checkpoint, the kernel
/// had moved on before it stopped and these figures are the latest known.
#[derive(Clone, Debug, Deserialize)]
pub struct ProjectedAccount {
    pub version: u64,
    pub seed_capital: f64,
    pub k_realized_pnl: f64,
    pub k_fees_paid: f64,
    pub k_funding_net: f64,
    pub e_known: bool,
    pub e_wallet_balance: f64,
    pub e_available_margin: f64,
    pub e_used_margin: f64,
    pub e_maint_margin: f64,
    pub event_seq: u64,
    pub calibration_ratio: f64,
    pub calibration_samples: u64,
}

impl Account {
    pub fn k_capital(&self) -> f64 {
        self.seed_capital + self.k_realized_pnl - self.k_fees_paid + self.k_funding_net
    }

    /// Rebuilds the lookup sets that checkpoints do not carry.
    pub fn rebuild_lookups(&mut self) {
        self.seen_lookup = self.seen_event_ids.iter().cloned().collect();
    }

    /// Takes the K and E figures of a projected account, all checked before any
    /// is set. Per-fill predicted fees and seen account event ids are not in a
    /// projection: the account keeps its own, so a FILL_SETTLED for a fill made
    /// after the checkpoint settles as a fill it never predicted.
    pub fn adopt(&mut self, p: &ProjectedAccount) -> Result<(), InputError> {
        // K figures sum the kernel's own results: bounded as derived figures.
        let signed = |field: &str, v: f64| check_derived(field, v, -MAX_DERIVED);
        let seed = check_number("seed_capital", p.seed_capital, 0.0, false)?;
        let realized = signed("k_realized_pnl", p.k_realized_pnl)?;
        let fees = signed("k_fees_paid", p.k_fees_paid)?;
        let funding = signed("k_funding_net", p.k_funding_net)?;
        let ratio = check_calibration_ratio("calibration_ratio", p.calibration_ratio)?;
        let exchange = if p.e_known {
            Some(ExchangeFigures {
                wallet_balance: signed("e_wallet_balance", p.e_wallet_balance)?,
                available_margin: signed("e_available_margin", p.e_available_margin)?,
                used_margin: signed("e_used_margin", p.e_used_margin)?,
                maint_margin: signed("e_maint_margin", p.e_maint_margin)?,
            })
        } else {
            None
        };
        self.seed_capital = seed;
        self.k_realized_pnl = realized;
        self.k_fees_paid = fees;
        self.k_funding_net = funding;
        self.exchange = exchange;
        self.event_seq = p.event_seq;
        self.calibration_ratio = ratio;
        self.calibration_samples = p.calibration_samples;
        // A version not below MAX_VERSION is no kernel's (see raise_versions): not taken.
        if takes_version(p.version) {
            self.version = self.version.max(p.version);
        }
        Ok(())
    }

    /// Checks an account read back from a checkpoint, so that corrupted bytes
    /// are refused rather than restored into a kernel whose K is NaN. The
    /// bounds are those of the calls that set each figure; K figures that the
    /// kernel sums itself need only be finite.
    pub fn check_restored(&self) -> Result<(), InputError> {
        let field = |name: &str| format!("checkpoint.account.{name}");
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(InputError::new(field(name), v, "must be a finite number"))
            }
        };
        check_number(&field("seed_capital"), self.seed_capital, 0.0, false)?;
        finite("k_realized_pnl", self.k_realized_pnl)?;
        finite("k_fees_paid", self.k_fees_paid)?;
        finite("k_funding_net", self.k_funding_net)?;
        if let Some(e) = &self.exchange {
            finite("exchange.wallet_balance", e.wallet_balance)?;
            finite("exchange.available_margin", e.available_margin)?;
            finite("exchange.used_margin", e.used_margin)?;
            finite("exchange.maint_margin", e.maint_margin)?;
        }
        check_calibration_ratio(&field("calibration_ratio"), self.calibration_ratio)?;
        self.config
            .check()
            .map_err(|e| InputError::new(field(&format!("config.{}", e.field)), e.value, e.reason))?;
        if let Some((id, fee)) = self.pending_fees.iter().find(|(_, fee)| !fee.is_finite()) {
            return Err(InputError::new(
                field(&format!("pending_fees[{id}]")),
                fee,
                "must be a finite number",
            ));
        }
        let distinct: HashSet<&str> = self.seen_event_ids.iter().map(String::as_str).collect();
        if distinct.len() != self.seen_event_ids.len() {
            return Err(InputError::new(
                field("seen_event_ids"),
                format!("{} entries", self.seen_event_ids.len()),
                format!("repeat ids ({} distinct): each is remembered once", distinct.len()),
            ));
        }
        for (name, len, cap) in [
            ("pending_fees", self.pending_fees.len(), PENDING_FEE_CAPACITY),
            ("seen_event_ids", self.seen_event_ids.len(), SEEN_ACCOUNT_EVENTS),
        ] {
            if len > cap {
                return Err(InputError::new(
                    field(name),
                    format!("{len} entries"),
                    format!("holds at most {cap}"),
                ));
            }
        }
        Ok(())
    }

    pub fn set_seed_capital(&mut self, seed: f64) -> Result<(), InputError> {
        self.seed_capital = check_number("seed_capital", seed, 0.0, false)?;
        self.version = self.version.saturating_add(1);
        Ok(())
    }

    pub fn set_config(&mut self, update: &ExchangeConfigUpdate) -> Result<(), InputError> {
        self.config = self.config.updated(update)?;
        self.version = self.version.saturating_add(1);
        Ok(())
    }

    /// Books an execution: realized PnL and the fee predicted for it.
    pub fn on_fill(&mut self, fill_id: &Id, price: f64, qty: f64, order_type: OrderType, realized: f64) -> f64 {
        let fee = self.config.fee(price, qty, order_type) * self.calibration_ratio;
        self.k_realized_pnl += realized;
        self.k_fees_paid += fee;
        self.pending_fees.push_back((fill_id.clone(), fee));
        if self.pending_fees.len() > PENDING_FEE_CAPACITY {
            self.pending_fees.pop_front();
        }
        self.version = self.version.saturating_add(1);
        fee
    }

    pub fn calibrate_fee(&mut self, price: f64, qty: f64, actual_fee: f64) -> Result<Calibration, InputError> {
        let price = check_number("fill_price", price, 0.0, true)?;
        let qty = check_number("fill_qty", qty, 0.0, true)?;
        let actual_fee = check_number("actual_fee", actual_fee, -MAX_MAGNITUDE, false)?;
        let expected_fee = self.config.fee(price, qty, OrderType::Market);
        if expected_fee == 0.0 {
            return Err(InputError::new(
                "expected_fee",
                expected_fee,
                "the fee model predicts no fee: set taker_rate with set_exchange_config first",
            ));
        }
        let ratio = actual_fee / expected_fee;
        if ratio.is_nan() || ratio.abs() > MAX_CALIBRATION_RATIO {
            return Err(InputError::new(
                "actual_fee",
                actual_fee,
                format!(
                    "is {ratio:e} times the expected fee {expected_fee:e}: a calibration ratio beyond \
                     ±{MAX_CALIBRATION_RATIO:e} does not correct a fee schedule"
                ),
            ));
        }
        let deviation_pct = (ratio - 1.0).abs() * 100.0;
        let calibration_status = if deviation_pct < 1.0 {
            "OK"
        } else if deviation_pct < 5.0 {
            "WARN"
        } else {
            "ERROR"
        };
        self.calibration_ratio = if self.calibration_samples == 0 {
            ratio
        } else {
            CALIBRATION_ALPHA * ratio + (1.0 - CALIBRATION_ALPHA) * self.calibration_ratio
        };
        self.calibration_samples = self.calibration_samples.saturating_add(1);
        self.version = self.version.saturating_add(1);
        Ok(Calibration {
            expected_fee,
            actual_fee,
            ratio,
            deviation_pct,
            calibration_status,
            calibration_ratio: self.calibration_ratio,
            calibration_samples: self.calibration_samples,
        })
    }

    fn validate(event: &AccountEvent) -> Result<(), InputError> {
        if event.event_id.is_empty() {
            return Err(InputError::new(
                "event_id",
                "''",
                "is required: account events are applied once per id",
            ));
        }
        let any = |field: &str, v: Option<f64>| {
            v.map_or(Ok(()), |v| check_number(field, v, -MAX_MAGNITUDE, false).map(|_| ()))
        };
        let need = |field: &str, v: Option<f64>, kind: &str| match v {
            None => Err(InputError::new(field, "missing", format!("is required for {kind}"))),
            Some(_) => Ok(()),
        };
        any("fee", event.fee)?;
        any("wallet_balance", event.wallet_balance)?;
        any("available_margin", event.available_margin)?;
        any("used_margin", event.used_margin)?;
        any("maint_margin", event.maint_margin)?;
        any("amount", event.amount)?;
        match event.kind {
            AccountEventKind::FillSettled => {
                need("fee", event.fee, "FILL_SETTLED")?;
                if event.fill_id.is_empty() {
                    return Err(InputError::new(
                        "fill_id",
                        "''",
                        "is required for FILL_SETTLED: the venue event id of the fill",
                    ));
                }
            }
            AccountEventKind::AccountUpdate => need("wallet_balance", event.wallet_balance, "ACCOUNT_UPDATE")?,
            AccountEventKind::FundingFee => need("amount", event.amount, "FUNDING_FEE")?,
        }
        Ok(())
    }

    pub fn apply(&mut self, event: &AccountEvent) -> AccountAnswer {
        if let Err(e) = Account::validate(event) {
            return AccountAnswer {
                applied: false,
                diagnostic_code: DiagnosticCode::InvalidEvent,
                details: Details::default()
                    .with("reason", e.reason)
                    .with("field", e.field)
                    .with("value", e.value)
                    .with("event_id", event.event_id.as_str()),
            };
        }
        if self.seen_lookup.contains(&event.event_id) {
            return AccountAnswer {
                applied: false,
                diagnostic_code: DiagnosticCode::DuplicateEvent,
                details: Details::default()
                    .with("reason", "account event already applied")
                    .with("event_id", event.event_id.as_str()),
            };
        }
        let mut details = Details::default().with("event_id", event.event_id.as_str());
        match event.kind {
            AccountEventKind::FillSettled => {
                let actual = event.fee.unwrap_or(0.0);
                // Settlements are rare next to fills, so a scan here keeps fills a plain push.
                let at = self.pending_fees.iter().position(|(id, _)| **id == *event.fill_id);
                let predicted = at.and_then(|n| self.pending_fees.remove(n)).map_or(0.0, |(_, p)| p);
                self.k_fees_paid += actual - predicted;
                details.set("predicted_fee", predicted);
                details.set("actual_fee", actual);
            }
            AccountEventKind::AccountUpdate => {
                let old = self.exchange.as_ref();
                self.exchange = Some(ExchangeFigures {
                    wallet_balance: event.wallet_balance.unwrap_or(0.0),
                    available_margin: event
                        .available_margin
                        .or(old.map(|o| o.available_margin))
                        .unwrap_or(0.0),
                    used_margin: event.used_margin.or(old.map(|o| o.used_margin)).unwrap_or(0.0),
                    maint_margin: event.maint_margin.or(old.map(|o| o.maint_margin)).unwrap_or(0.0),
                });
            }
            AccountEventKind::FundingFee => {
                self.k_funding_net += event.amount.unwrap_or(0.0);
            }
        }
        if self.seen_event_ids.len() >= SEEN_ACCOUNT_EVENTS {
            if let Some(old) = self.seen_event_ids.pop_front() {
                self.seen_lookup.remove(&old);
            }
        }
        self.seen_event_ids.push_back(event.event_id.clone());
        self.seen_lookup.insert(event.event_id.clone());
        self.event_seq = self.event_seq.saturating_add(1);
        self.version = self.version.saturating_add(1);
        AccountAnswer {
            applied: true,
            diagnostic_code: DiagnosticCode::Ok,
            details,
        }
    }

    pub fn view(&self, exposure: Exposure) -> AccountView {
        let k = self.k_capital();
        let unsettled_fees: f64 = self.pending_fees.iter().map(|(_, f)| f).sum();
        let (status, delta, explanation) = match &self.exchange {
            None => (
                "UNKNOWN",
                0.0,
                "no ACCOUNT_UPDATE yet: available_capital is the kernel's own K".to_owned(),
            ),
            Some(e) => {
                let delta = k - e.wallet_balance;
                let tolerance = 0.01 + 1e-6 * e.wallet_balance.abs();
                let mut why = format!("K {k:.6} - E wallet {:.6} = {delta:+.6}", e.wallet_balance);
                let status = if delta.abs() <= tolerance {
                    why.push_str(&format!("; within tolerance {tolerance:.6}"));
                    "OK"
                } else if delta.abs() <= unsettled_fees + tolerance {
                    why.push_str(&format!(
                        "; explained by {} fills awaiting FILL_SETTLED (predicted fees {unsettled_fees:.6})",
                        self.pending_fees.len()
                    ));
                    "WARN"
                } else if delta.abs() <= 0.01 * e.wallet_balance.abs() {
                    why.push_str("; below 1 % of the wallet: fee calibration, funding or events not yet seen");
                    "WARN"
                } else {
                    why.push_str("; beyond 1 % of the wallet: an account event is missing or K is wrong");
                    "ERROR"
                };
                (status, delta, why)
            }
        };
        let e = self.exchange.clone().unwrap_or(ExchangeFigures {
            wallet_balance: 0.0,
            available_margin: 0.0,
            used_margin: 0.0,
            maint_margin: 0.0,
        });
        let equity = k + exposure.unrealized;
        AccountView {
            seed_capital: self.seed_capital,
            k_capital: k,
            k_realized_pnl: self.k_realized_pnl,
            k_fees_paid: self.k_fees_paid,
            k_funding_net: self.k_funding_net,
            e_known: self.exchange.is_some(),
            e_wallet_balance: e.wallet_balance,
            e_available_margin: e.available_margin,
            e_used_margin: e.used_margin,
            e_maint_margin: e.maint_margin,
            available_capital: if self.exchange.is_some() { e.available_margin } else { k },
            reconcile_status: status,
            reconcile_delta: delta,
            reconcile_explanation: explanation,
            unsettled_fills: self.pending_fees.len(),
            unsettled_fees,
            event_seq: self.event_seq,
            calibration_ratio: self.calibration_ratio,
            calibration_samples: self.calibration_samples,
            exchange_config: self.config.clone(),
            capital: k,
            equity,
            realized_pnl: self.k_realized_pnl,
            unrealized_pnl: exposure.unrealized,
            open_positions: exposure.open,
            open_notional: exposure.notional,
            // A tiny positive equity makes the quotient overflow: the largest
            // finite figure says "enormous" and stays a JSON number.
            leverage: if equity > 0.0 {
                (exposure.notional / equity).min(f64::MAX)
            } else {
                0.0
            },
            version: self.version,
        }
    }
}
