//! Parsing of the helper attributes: `#[event(..)]`, `#[command(..)]`, `#[aggregate(..)]`, and
//! the few `#[serde(..)]` keys that change how an event enum is stored.
//!
//! Each position (enum, variant, struct) has one function with one branch per key. A bad value
//! or an unknown key is recorded in the [`Ctxt`] and parsing goes on with the next key, so all
//! mistakes of one input show up in one build; only a syntax error ends the attribute early.

use syn::meta::ParseNestedMeta;
use syn::{Attribute, ExprPath, Fields, Ident, LitInt, LitStr, Path, Type};

use crate::ctxt::Ctxt;
use crate::symbol::{
    Symbol, AGGREGATE, ALIAS, APPLY, ASYNC, COMMAND, CRATE, ERROR, EVENT, HANDLER, NAME, REMOVED,
    SERVICES, SNAPSHOT_EVERY, SNAPSHOT_VERSION, UPCAST, UPCAST_FROM, VERSION,
};

mod serde;
mod value;

pub(crate) use serde::{serde_enum_attrs, serde_variant_attrs};
use value::{
    parse_crate_path, parse_flag, parse_handler, parse_method_name, parse_snapshot_every,
    parse_steps, parse_string, parse_string_list, parse_type, parse_version, unknown_key,
};

/// One key's value in three states: not written, written with a value, or written and already
/// reported (a bad value or a syntax error), so that a required key is not also reported missing.
/// A second occurrence is reported as a duplicate and the first value kept (serde's `Attr`).
pub(crate) struct Attr<T> {
    attr: Symbol,
    key: Symbol,
    value: Value<T>,
}

/// What an [`Attr`] holds.
pub(crate) enum Value<T> {
    Absent,
    Set(T),
    Reported,
}

impl<T> Attr<T> {
    fn none(attr: Symbol, key: Symbol) -> Self {
        Attr {
            attr,
            key,
            value: Value::Absent,
        }
    }

    /// Stores the value the branch parsed (`Ok(None)`: a bad value, already reported), or
    /// reports a duplicate on the second occurrence's key.
    fn set(
        &mut self,
        cx: &Ctxt,
        meta: &ParseNestedMeta<'_>,
        parsed: syn::Result<Option<T>>,
    ) -> syn::Result<()> {
        if !matches!(self.value, Value::Absent) {
            cx.error_spanned_by(
                &meta.path,
                format!("duplicate `{}` attribute `{}`", self.attr, self.key),
            );
            return parsed.map(drop);
        }
        self.value = match parsed {
            Ok(Some(value)) => Value::Set(value),
            Ok(None) => Value::Reported,
            Err(error) => {
                self.value = Value::Reported;
                return Err(error);
            }
        };
        Ok(())
    }

    /// The value, if one was written and valid.
    pub(crate) fn get(self) -> Option<T> {
        match self.value {
            Value::Set(value) => Some(value),
            Value::Absent | Value::Reported => None,
        }
    }

    /// Whether a flag (`async`, `services`) was written.
    fn is_set(&self) -> bool {
        matches!(self.value, Value::Set(_))
    }

    /// The attribute and the key, for messages: `command`, `aggregate`.
    pub(crate) fn names(&self) -> (Symbol, Symbol) {
        (self.attr, self.key)
    }

    pub(crate) fn into_value(self) -> Value<T> {
        self.value
    }
}

/// Dispatches a key of `#[attr(..)]` to its branch, or reports it as unknown with the list of
/// the branches' keys: the list is made from the branches, so it cannot leave one out.
///
/// `match_key!(cx, meta, EVENT, "", { APPLY => { .. } CRATE => { .. } })`
macro_rules! match_key {
    ($cx:expr, $meta:expr, $attr:expr, $position:expr, { $($key:ident => $branch:block)+ }) => {
        $(if $meta.path == $key $branch else)+ {
            unknown_key($cx, $meta, $attr, $position, &[$($key),+])?;
        }
    };
}

/// `#[event(..)]` on the event enum.
pub(crate) struct EventAttrs {
    /// The state type that gets `impl Apply<Enum>`.
    pub(crate) apply: Option<Type>,
    /// Type names of events that no longer exist: decoded as "skip this event".
    pub(crate) removed: Vec<LitStr>,
    pub(crate) krate: Option<Path>,
}

/// `#[event(..)]` on one event variant.
pub(crate) struct EventVariantAttrs {
    pub(crate) name: Option<LitStr>,
    /// Former type names, read but never written.
    pub(crate) aliases: Vec<LitStr>,
    pub(crate) version: Option<VersionLit>,
    /// `upcast(1 => path::to::fn, ..)`: JSON upcasters.
    pub(crate) upcast: Vec<(VersionLit, ExprPath)>,
    /// `upcast_from(1 => OpenedV1, ..)`: typed upcasters.
    pub(crate) upcast_from: Vec<(VersionLit, Type)>,
    pub(crate) apply: Option<Ident>,
}

/// A schema version as written, kept so errors can point at it.
pub(crate) struct VersionLit {
    pub(crate) value: u32,
    pub(crate) lit: LitInt,
}

/// `#[command(..)]` on the command enum.
pub(crate) struct CommandAttrs {
    /// Required: `check::required` reports it missing.
    pub(crate) aggregate: Attr<Type>,
    pub(crate) is_async: bool,
    pub(crate) services: bool,
    pub(crate) krate: Option<Path>,
}

/// `#[command(..)]` on one command variant.
pub(crate) struct CommandVariantAttrs {
    pub(crate) handler: Option<ExprPath>,
    pub(crate) is_async: bool,
    pub(crate) services: bool,
}

/// `#[aggregate(..)]` on the state struct.
pub(crate) struct AggregateAttrs {
    pub(crate) name: Option<LitStr>,
    pub(crate) snapshot_every: Option<(u64, LitInt)>,
    pub(crate) snapshot_version: Option<VersionLit>,
    /// Required, as are `command` and `error`: `check::required` reports them missing.
    pub(crate) event: Attr<Type>,
    pub(crate) command: Attr<Type>,
    pub(crate) error: Attr<Type>,
    pub(crate) services: Option<Type>,
    pub(crate) krate: Option<Path>,
}

pub(crate) fn event_attrs(cx: &Ctxt, attrs: &[Attribute]) -> EventAttrs {
    let mut apply = Attr::none(EVENT, APPLY);
    let mut removed = Attr::none(EVENT, REMOVED);
    let mut krate = Attr::none(EVENT, CRATE);
    for_each_key(cx, attrs, EVENT, |meta| {
        match_key!(cx, meta, EVENT, "", {
            APPLY => {
                // #[event(apply = BankAccount)]
                apply.set(cx, meta, parse_type(cx, meta, "apply = BankAccount"))?;
            }
            REMOVED => {
                // #[event(removed("AuditPinged", "LegacyFlag"))]
                removed.set(cx, meta, parse_string_list(meta).map(Some))?;
            }
            CRATE => {
                // #[event(crate = "::annals")]
                krate.set(cx, meta, parse_crate_path(cx, meta))?;
            }
        });
        Ok(())
    });
    EventAttrs {
        apply: apply.get(),
        removed: removed.get().unwrap_or_default(),
        krate: krate.get(),
    }
}

pub(crate) fn event_variant_attrs(cx: &Ctxt, attrs: &[Attribute]) -> EventVariantAttrs {
    let mut name = Attr::none(EVENT, NAME);
    let mut aliases = Vec::new();
    let mut version = Attr::none(EVENT, VERSION);
    let mut upcast = Attr::none(EVENT, UPCAST);
    let mut upcast_from = Attr::none(EVENT, UPCAST_FROM);
    let mut apply = Attr::none(EVENT, APPLY);
    for_each_key(cx, attrs, EVENT, |meta| {
        match_key!(cx, meta, EVENT, " on a variant", {
            NAME => {
                // #[event(name = "account.opened")]
                name.set(cx, meta, parse_string(cx, meta, "name = \"account.opened\""))?;
            }
            ALIAS => {
                // #[event(alias = "AccountOpened")], repeatable
                if let Some(lit) = parse_string(cx, meta, "alias = \"AccountOpened\"")? {
                    aliases.push(lit);
                }
            }
            VERSION => {
                // #[event(version = 2)]
                version.set(cx, meta, parse_version(cx, meta))?;
            }
            UPCAST => {
                // #[event(upcast(1 => upcast::opened_v1, 2 => upcast::opened_v2))]
                let steps = parse_steps(cx, meta, |input| input.parse::<ExprPath>());
                upcast.set(cx, meta, steps.map(Some))?;
            }
            UPCAST_FROM => {
                // #[event(upcast_from(1 => OpenedV1, 2 => OpenedV2))]
                let steps = parse_steps(cx, meta, |input| input.parse::<Type>());
                upcast_from.set(cx, meta, steps.map(Some))?;
            }
            APPLY => {
                // #[event(apply = on_opened)]
                apply.set(cx, meta, parse_method_name(cx, meta, "apply = on_opened"))?;
            }
        });
        Ok(())
    });
    EventVariantAttrs {
        name: name.get(),
        aliases,
        version: version.get(),
        upcast: upcast.get().unwrap_or_default(),
        upcast_from: upcast_from.get().unwrap_or_default(),
        apply: apply.get(),
    }
}

pub(crate) fn command_attrs(cx: &Ctxt, attrs: &[Attribute]) -> CommandAttrs {
    let mut aggregate = Attr::none(COMMAND, AGGREGATE);
    let mut is_async = Attr::none(COMMAND, ASYNC);
    let mut services = Attr::none(COMMAND, SERVICES);
    let mut krate = Attr::none(COMMAND, CRATE);
    for_each_key(cx, attrs, COMMAND, |meta| {
        match_key!(cx, meta, COMMAND, "", {
            AGGREGATE => {
                // #[command(aggregate = BankAccount)]
                aggregate.set(cx, meta, parse_type(cx, meta, "aggregate = BankAccount"))?;
            }
            ASYNC => {
                // #[command(async)]
                is_async.set(cx, meta, parse_flag(cx, meta))?;
            }
            SERVICES => {
                // #[command(services)]
                services.set(cx, meta, parse_flag(cx, meta))?;
            }
            CRATE => {
                // #[command(crate = "::annals")]
                krate.set(cx, meta, parse_crate_path(cx, meta))?;
            }
        });
        Ok(())
    });
    CommandAttrs {
        aggregate,
        is_async: is_async.is_set(),
        services: services.is_set(),
        krate: krate.get(),
    }
}

pub(crate) fn command_variant_attrs(cx: &Ctxt, attrs: &[Attribute]) -> CommandVariantAttrs {
    let mut handler = Attr::none(COMMAND, HANDLER);
    let mut is_async = Attr::none(COMMAND, ASYNC);
    let mut services = Attr::none(COMMAND, SERVICES);
    for_each_key(cx, attrs, COMMAND, |meta| {
        match_key!(cx, meta, COMMAND, " on a variant", {
            HANDLER => {
                // #[command(handler = close_account)] or #[command(handler = handlers::close)]
                handler.set(cx, meta, parse_handler(cx, meta))?;
            }
            ASYNC => {
                // #[command(async)]
                is_async.set(cx, meta, parse_flag(cx, meta))?;
            }
            SERVICES => {
                // #[command(services)]
                services.set(cx, meta, parse_flag(cx, meta))?;
            }
        });
        Ok(())
    });
    CommandVariantAttrs {
        handler: handler.get(),
        is_async: is_async.is_set(),
        services: services.is_set(),
    }
}

pub(crate) fn aggregate_attrs(cx: &Ctxt, attrs: &[Attribute]) -> AggregateAttrs {
    let mut name = Attr::none(AGGREGATE, NAME);
    let mut snapshot_every = Attr::none(AGGREGATE, SNAPSHOT_EVERY);
    let mut snapshot_version = Attr::none(AGGREGATE, SNAPSHOT_VERSION);
    let mut event = Attr::none(AGGREGATE, EVENT);
    let mut command = Attr::none(AGGREGATE, COMMAND);
    let mut error = Attr::none(AGGREGATE, ERROR);
    let mut services = Attr::none(AGGREGATE, SERVICES);
    let mut krate = Attr::none(AGGREGATE, CRATE);
    for_each_key(cx, attrs, AGGREGATE, |meta| {
        match_key!(cx, meta, AGGREGATE, "", {
            NAME => {
                // #[aggregate(name = "bank-account")]
                name.set(cx, meta, parse_string(cx, meta, "name = \"bank-account\""))?;
            }
            EVENT => {
                // #[aggregate(event = AccountEvent)]
                event.set(cx, meta, parse_type(cx, meta, "event = AccountEvent"))?;
            }
            COMMAND => {
                // #[aggregate(command = AccountCommand)]
                command.set(cx, meta, parse_type(cx, meta, "command = AccountCommand"))?;
            }
            ERROR => {
                // #[aggregate(error = AccountError)]
                error.set(cx, meta, parse_type(cx, meta, "error = AccountError"))?;
            }
            SERVICES => {
                // #[aggregate(services = Clock)]
                services.set(cx, meta, parse_type(cx, meta, "services = Clock"))?;
            }
            SNAPSHOT_EVERY => {
                // #[aggregate(snapshot_every = 100)]
                snapshot_every.set(cx, meta, parse_snapshot_every(cx, meta))?;
            }
            SNAPSHOT_VERSION => {
                // #[aggregate(snapshot_version = 2)]
                snapshot_version.set(cx, meta, parse_version(cx, meta))?;
            }
            CRATE => {
                // #[aggregate(crate = "::annals")]
                krate.set(cx, meta, parse_crate_path(cx, meta))?;
            }
        });
        Ok(())
    });
    AggregateAttrs {
        name: name.get(),
        snapshot_every: snapshot_every.get(),
        snapshot_version: snapshot_version.get(),
        event,
        command,
        error,
        services: services.get(),
        krate: krate.get(),
    }
}

/// Reports a helper attribute on a field, where the derive never looks.
pub(crate) fn reject_on_fields(cx: &Ctxt, fields: &Fields, attr: Symbol) {
    for field in fields {
        for a in &field.attrs {
            if a.path() == attr {
                cx.error_spanned_by(a, format!("`#[{attr}(..)]` is not supported on a field"));
            }
        }
    }
}

/// Runs `f` on each key of every `#[name(..)]` attribute; a syntax error ends that attribute.
fn for_each_key(
    cx: &Ctxt,
    attrs: &[Attribute],
    name: Symbol,
    mut f: impl FnMut(&ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|attr| attr.path() == name) {
        if let Err(error) = attr.parse_nested_meta(|meta| f(&meta)) {
            cx.syn_error(error);
        }
    }
}
