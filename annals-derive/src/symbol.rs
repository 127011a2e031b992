//! The names of the helper attributes and of their keys (serde_derive's `symbol.rs`). The
//! parser's branches and its "expected one of .." lists both use these constants, so a key is
//! spelled in one place.

use std::fmt::{self, Display};

use syn::Path;

/// One attribute or key name.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) struct Symbol(&'static str);

pub(crate) const EVENT: Symbol = Symbol("event");
pub(crate) const COMMAND: Symbol = Symbol("command");
pub(crate) const AGGREGATE: Symbol = Symbol("aggregate");
pub(crate) const SERDE: Symbol = Symbol("serde");

pub(crate) const ALIAS: Symbol = Symbol("alias");
pub(crate) const APPLY: Symbol = Symbol("apply");
pub(crate) const ASYNC: Symbol = Symbol("async");
pub(crate) const CRATE: Symbol = Symbol("crate");
pub(crate) const ERROR: Symbol = Symbol("error");
pub(crate) const HANDLER: Symbol = Symbol("handler");
pub(crate) const NAME: Symbol = Symbol("name");
pub(crate) const REMOVED: Symbol = Symbol("removed");
pub(crate) const SERVICES: Symbol = Symbol("services");
pub(crate) const SNAPSHOT_EVERY: Symbol = Symbol("snapshot_every");
pub(crate) const SNAPSHOT_VERSION: Symbol = Symbol("snapshot_version");
pub(crate) const UPCAST: Symbol = Symbol("upcast");
pub(crate) const UPCAST_FROM: Symbol = Symbol("upcast_from");
pub(crate) const VERSION: Symbol = Symbol("version");

// The `#[serde(..)]` keys that change how an event is stored.
pub(crate) const CONTENT: Symbol = Symbol("content");
pub(crate) const OTHER: Symbol = Symbol("other");
pub(crate) const RENAME: Symbol = Symbol("rename");
pub(crate) const RENAME_ALL: Symbol = Symbol("rename_all");
pub(crate) const SKIP: Symbol = Symbol("skip");
pub(crate) const SKIP_DESERIALIZING: Symbol = Symbol("skip_deserializing");
pub(crate) const SKIP_SERIALIZING: Symbol = Symbol("skip_serializing");
pub(crate) const TAG: Symbol = Symbol("tag");
pub(crate) const UNTAGGED: Symbol = Symbol("untagged");

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl PartialEq<Symbol> for &Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
