//! What the service keeps of each kind (buses, rules, schedules, groups):
//! one store document per record and, in [`State`], a map by (account,
//! region) then the record's key. Loading at start, saving and removing are
//! written once here for all four.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use strato_model::wire::ServiceError;
use strato_store::Store;

use crate::records::{self, BusRecord, GroupRecord, RuleRecord, ScheduleRecord};
use crate::{parse, AccountKey, EventsError, EventsService, LiveRule, LiveSchedule, State};

/// A kind the service keeps.
pub(crate) trait Kept: Serialize + DeserializeOwned {
    /// The store document kind.
    const KIND: &'static str;
    /// The key within an account: a name, or (bus or group, name).
    type Key: Ord;
    /// What the live map holds: the record, or the record compiled.
    type Live;

    fn owner(&self) -> AccountKey;
    fn key(&self) -> Self::Key;
    /// The store document id.
    fn id(&self) -> String;
    fn live(self) -> Self::Live;
    fn map(state: &mut State) -> &mut BTreeMap<AccountKey, BTreeMap<Self::Key, Self::Live>>;
}

impl State {
    /// Serves `record` from memory.
    pub(crate) fn keep<R: Kept>(&mut self, record: R) {
        let key = record.key();
        R::map(self)
            .entry(record.owner())
            .or_default()
            .insert(key, record.live());
    }

    /// Every stored record of the kind, into memory.
    pub(crate) async fn load<R: Kept>(&mut self, store: &dyn Store) -> Result<(), EventsError> {
        for doc in store.list_all_documents(R::KIND).await? {
            self.keep(parse::<R>(&doc.key.id, doc.doc)?);
        }
        Ok(())
    }
}

impl EventsService {
    /// Stores `record`, then serves it.
    pub(crate) async fn save<R: Kept>(&self, record: R) -> Result<(), ServiceError> {
        let (account, region) = record.owner();
        self.put_doc(&account, &region, R::KIND, &record.id(), &record)
            .await?;
        self.state.write().keep(record);
        Ok(())
    }

    /// Deletes `record` from the store, then stops serving it.
    pub(crate) async fn remove<R: Kept>(&self, record: &R) -> Result<(), ServiceError> {
        let owner = record.owner();
        self.delete_doc(&owner.0, &owner.1, R::KIND, &record.id())
            .await?;
        if let Some(kept) = R::map(&mut self.state.write()).get_mut(&owner) {
            kept.remove(&record.key());
        }
        Ok(())
    }
}

/// `Kept` for a record type: its store kind, the `State` map it lives in,
/// its key there and store id, and what the map holds of it.
macro_rules! kept {
    ($record:ty, $kind:expr, $map:ident, $key:ty, |$r:ident| $key_of:expr, $id_of:expr, $live:ty, $live_of:expr) => {
        impl Kept for $record {
            const KIND: &'static str = $kind;
            type Key = $key;
            type Live = $live;

            fn owner(&self) -> AccountKey {
                (self.account.clone(), self.region.clone())
            }
            fn key(&self) -> $key {
                let $r = self;
                $key_of
            }
            fn id(&self) -> String {
                let $r = self;
                $id_of
            }
            fn live(self) -> $live {
                let $r = self;
                $live_of
            }
            fn map(state: &mut State) -> &mut BTreeMap<AccountKey, BTreeMap<$key, $live>> {
                &mut state.$map
            }
        }
    };
}

kept!(
    BusRecord,
    records::BUS_KIND,
    buses,
    String,
    |r| r.name.clone(),
    r.name.clone(),
    BusRecord,
    r
);
kept!(
    GroupRecord,
    records::GROUP_KIND,
    groups,
    String,
    |r| r.name.clone(),
    r.name.clone(),
    GroupRecord,
    r
);
kept!(
    RuleRecord,
    records::RULE_KIND,
    rules,
    (String, String),
    |r| (r.bus.clone(), r.name.clone()),
    r.id(),
    Arc<LiveRule>,
    Arc::new(LiveRule::new(r))
);
kept!(
    ScheduleRecord,
    records::SCHEDULE_KIND,
    schedules,
    (String, String),
    |r| (r.group.clone(), r.name.clone()),
    r.id(),
    Arc<LiveSchedule>,
    Arc::new(LiveSchedule::new(r))
);
