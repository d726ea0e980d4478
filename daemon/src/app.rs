//! The daemon's shared state, handed to every request handler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use notifyd_core::id::IdGenerator;
use notifyd_core::idempotency::IdempotencyTable;

use crate::clock::Clock;
use crate::delivery::Dispatcher;
use crate::ingest::inflight::InFlight;
use crate::inquiry::InquirySettings;
use crate::profile::Profile;
use crate::status::Tally;
use crate::store::Store;

/// Ingest limits from `[ingest]`.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    /// Largest request body (413 beyond).
    pub max_body_bytes: usize,
    /// Most envelopes per batch.
    pub max_batch: usize,
    /// Most notifications pending delivery (429 beyond).
    pub max_pending: usize,
    /// Time a client has to send a request body.
    pub body_timeout: std::time::Duration,
}

/// Everything a handler needs.
#[derive(Debug)]
pub struct App {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Duplicate detection in memory (backed by the store's idempotency records).
    pub idempotency: IdempotencyTable,
    /// Delivery.
    pub dispatcher: Dispatcher,
    /// This daemon's own accepted and delivered counts (the dispatcher's, shared).
    pub tally: Arc<Tally>,
    /// Notification ids, strictly increasing in accept order.
    pub ids: IdGenerator,
    /// Accept commits under way, which repeats of their keys wait for.
    pub inflight: InFlight,
    /// Inquiry settings and merchants; replaced whole on SIGHUP.
    inquiry: RwLock<Arc<InquirySettings>>,
    /// Wall clock.
    pub clock: Clock,
    /// Ingest limits.
    pub limits: IngestLimits,
    /// Accepted bearer tokens; empty when ingest auth is off.
    pub tokens: Vec<Vec<u8>>,
    /// Taken across each change of operators' holds (a store write and the shards' change, or
    /// a claimer's read-and-apply), so that two changes of one endpoint cannot reach the store
    /// and the shards in opposite orders.
    pub holds: tokio::sync::Mutex<()>,
    stopping: AtomicBool,
    ready: AtomicBool,
}

impl App {
    /// Builds the state; not ready until [`App::set_ready`].
    pub fn new(
        store: Arc<dyn Store>,
        idempotency: IdempotencyTable,
        dispatcher: Dispatcher,
        clock: Clock,
        limits: IngestLimits,
        tokens: Vec<Vec<u8>>,
    ) -> App {
        App {
            store,
            idempotency,
            tally: dispatcher.tally(),
            dispatcher,
            ids: IdGenerator::new(),
            inflight: InFlight::default(),
            inquiry: RwLock::new(Arc::new(InquirySettings::default())),
            clock,
            limits,
            tokens,
            holds: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            ready: AtomicBool::new(false),
        }
    }

    /// The profile named `name`, if configured (the dispatcher holds the registry).
    pub fn profile(&self, name: &str) -> Option<Arc<Profile>> {
        self.dispatcher.profile(name)
    }

    /// Replaces all profiles (SIGHUP); see [`Dispatcher::replace_profiles`].
    pub fn replace_profiles(&self, profiles: HashMap<String, Arc<Profile>>) {
        self.dispatcher.replace_profiles(profiles);
    }

    /// What a body field the envelope's API does not define gets under profile `name`; an
    /// unknown profile refuses (its envelope is refused for naming it anyway).
    pub fn extra_fields(&self, name: &str) -> notifyd_core::model::ExtraFieldsPolicy {
        self.profile(name)
            .map(|p| p.extra_fields)
            .unwrap_or_default()
    }

    /// The inquiry settings in force.
    pub fn inquiry(&self) -> Arc<InquirySettings> {
        self.inquiry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the inquiry settings (start, SIGHUP).
    pub fn replace_inquiry(&self, settings: InquirySettings) {
        *self.inquiry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
    }

    /// Recovery is done: `/readyz` answers 200.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether recovery is done.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Shutdown began: ingest answers 503.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Whether shutdown began.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}
