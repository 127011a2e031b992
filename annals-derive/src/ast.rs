//! The typed model of a derive input: what each variant is called, stored as and dispatched to,
//! with the defaults filled in. It borrows the syn nodes so later errors can point at them.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Data, DataEnum, DeriveInput, ExprPath, Fields, Ident, LitInt, LitStr, Path, Type};

use crate::attr;
use crate::case;
use crate::check;
use crate::ctxt::Ctxt;
use crate::symbol::{Symbol, AGGREGATE, APPLY, COMMAND, EVENT, HANDLER};

/// An enum with `#[derive(Event)]`.
pub(crate) struct EventEnum<'a> {
    pub(crate) input: &'a DeriveInput,
    pub(crate) krate: Path,
    /// The state type that gets `impl Apply<Enum>`, from `#[event(apply = ..)]`.
    pub(crate) apply: Option<Type>,
    /// Type names of removed events, from `#[event(removed(..))]`.
    pub(crate) removed: Vec<LitStr>,
    pub(crate) variants: Vec<EventVariant<'a>>,
}

/// One event type.
pub(crate) struct EventVariant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) fields: &'a Fields,
    /// The stored type name.
    pub(crate) name: String,
    /// The `name = ".."` literal, when the name is not the default.
    pub(crate) name_lit: Option<LitStr>,
    /// Former type names, read but never written.
    pub(crate) aliases: Vec<LitStr>,
    /// The current schema version.
    pub(crate) version: u32,
    /// The `version = N` literal, when the version is not the default.
    pub(crate) version_lit: Option<LitInt>,
    /// The upcasting steps, in the order written (`check` validates the chain).
    pub(crate) steps: Vec<Step>,
    /// The name serde gives the variant, which the body codec needs.
    pub(crate) serde_name: String,
    /// The method of the `apply` state that this variant calls.
    pub(crate) apply_method: Ident,
}

impl EventVariant<'_> {
    /// The stored type name is both what duplicates are checked by and, when it was written
    /// out, the token errors point at.
    pub(crate) fn name_tokens(&self) -> proc_macro2::TokenStream {
        match &self.name_lit {
            Some(lit) => quote::quote!(#lit),
            None => {
                let ident = self.ident;
                quote::quote!(#ident)
            }
        }
    }
}

/// One upcasting step: from a stored version to the next.
pub(crate) struct Step {
    /// The version the step starts from.
    pub(crate) from: u32,
    pub(crate) from_lit: LitInt,
    pub(crate) kind: StepKind,
}

/// How a step converts a body.
pub(crate) enum StepKind {
    /// `upcast(1 => f)`: `fn(serde_json::Value) -> Result<serde_json::Value, E>`.
    Json(ExprPath),
    /// `upcast_from(1 => T)`: the body of version `from` deserializes into `T`, which converts
    /// with `TryFrom` into the next version's type (or the event enum, after the last step).
    Typed(Type),
}

/// An enum with `#[derive(Command)]`.
pub(crate) struct CommandEnum<'a> {
    pub(crate) input: &'a DeriveInput,
    pub(crate) krate: Path,
    pub(crate) aggregate: Type,
    pub(crate) variants: Vec<CommandVariant<'a>>,
}

/// One command.
pub(crate) struct CommandVariant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) fields: &'a Fields,
    pub(crate) handler: Handler,
    pub(crate) is_async: bool,
    pub(crate) services: bool,
}

/// The function a command variant is handled by.
pub(crate) enum Handler {
    /// A method of the aggregate: the default, or `handler = name`.
    Method(Ident),
    /// Any function, called as written: `handler = handlers::close`.
    Path(ExprPath),
}

/// A struct with `#[derive(Aggregate)]`.
pub(crate) struct AggregateStruct<'a> {
    pub(crate) input: &'a DeriveInput,
    pub(crate) krate: Path,
    pub(crate) name: String,
    /// The `name = ".."` literal, when the name is not the default.
    pub(crate) name_lit: Option<LitStr>,
    pub(crate) event: Type,
    pub(crate) command: Type,
    pub(crate) error: Type,
    pub(crate) services: Type,
    /// `snapshot_every = N`, with the literal for errors.
    pub(crate) snapshot_every: Option<(u64, LitInt)>,
    /// `snapshot_version = V`.
    pub(crate) snapshot_version: Option<attr::VersionLit>,
}

impl<'a> EventEnum<'a> {
    /// The model, or none when the input is not an enum or a variant's default method name
    /// cannot be spelled (reported).
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::event_attrs(cx, &input.attrs);
        let data = enum_data(cx, input, EVENT_ON_NON_ENUM)?;
        attr::serde_enum_attrs(cx, &input.attrs);
        // Every variant is read, so that all their errors are reported, before any is missing.
        let variants: Vec<Option<EventVariant<'a>>> = data
            .variants
            .iter()
            .map(|variant| {
                let event = attr::event_variant_attrs(cx, &variant.attrs);
                let serde = attr::serde_variant_attrs(cx, &variant.attrs);
                attr::reject_on_fields(cx, &variant.fields, EVENT);
                let ident = &variant.ident;
                let apply_method = match event.apply {
                    Some(method) => Some(method),
                    None => default_method(cx, ident, EVENT, APPLY),
                };
                Some(EventVariant {
                    ident,
                    fields: &variant.fields,
                    name: match &event.name {
                        Some(lit) => lit.value(),
                        None => ident.unraw().to_string(),
                    },
                    name_lit: event.name,
                    aliases: event.aliases,
                    version: event.version.as_ref().map_or(1, |v| v.value),
                    version_lit: event.version.map(|v| v.lit),
                    steps: event
                        .upcast
                        .into_iter()
                        .map(|(from, f)| Step {
                            from: from.value,
                            from_lit: from.lit,
                            kind: StepKind::Json(f),
                        })
                        .chain(event.upcast_from.into_iter().map(|(from, ty)| Step {
                            from: from.value,
                            from_lit: from.lit,
                            kind: StepKind::Typed(ty),
                        }))
                        .collect(),
                    serde_name: match serde.rename {
                        Some(lit) => lit.value(),
                        None => ident.unraw().to_string(),
                    },
                    apply_method: apply_method?,
                })
            })
            .collect();
        Some(EventEnum {
            input,
            krate: crate_path(attrs.krate),
            apply: attrs.apply,
            removed: attrs.removed,
            variants: variants.into_iter().collect::<Option<_>>()?,
        })
    }
}

const EVENT_ON_NON_ENUM: &str =
    "`#[derive(Event)]` only supports enums: each variant is one event type";
const COMMAND_ON_NON_ENUM: &str =
    "`#[derive(Command)]` only supports enums: each variant is one command";
const AGGREGATE_ON_NON_STRUCT: &str =
    "`#[derive(Aggregate)]` only supports structs: the struct is the aggregate's state";

impl<'a> CommandEnum<'a> {
    /// The model, or none when the input is not an enum, names no aggregate, or a variant's
    /// default handler name cannot be spelled (reported).
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::command_attrs(cx, &input.attrs);
        // On anything but an enum the one error is that; a missing key would only add noise.
        let data = enum_data(cx, input, COMMAND_ON_NON_ENUM)?;
        let variants: Vec<Option<CommandVariant<'a>>> = data
            .variants
            .iter()
            .map(|variant| {
                let command = attr::command_variant_attrs(cx, &variant.attrs);
                attr::reject_on_fields(cx, &variant.fields, COMMAND);
                let handler = match command.handler {
                    Some(path) => match (&path.qself, path.path.get_ident()) {
                        (None, Some(ident)) => Handler::Method(ident.clone()),
                        _ => Handler::Path(path),
                    },
                    None => Handler::Method(default_method(cx, &variant.ident, COMMAND, HANDLER)?),
                };
                Some(CommandVariant {
                    ident: &variant.ident,
                    fields: &variant.fields,
                    handler,
                    is_async: attrs.is_async || command.is_async,
                    services: attrs.services || command.services,
                })
            })
            .collect();
        let aggregate = check::required(
            cx,
            attrs.aggregate,
            &input.ident,
            "the aggregate whose methods handle these commands",
        );
        Some(CommandEnum {
            input,
            krate: crate_path(attrs.krate),
            aggregate: aggregate?,
            variants: variants.into_iter().collect::<Option<_>>()?,
        })
    }
}

impl<'a> AggregateStruct<'a> {
    /// The model, or none when the input is not a struct or a required key is missing
    /// (reported).
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::aggregate_attrs(cx, &input.attrs);
        let data = match &input.data {
            Data::Struct(data) => data,
            Data::Enum(data) => {
                cx.error_spanned_by(data.enum_token, AGGREGATE_ON_NON_STRUCT);
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(data.union_token, AGGREGATE_ON_NON_STRUCT);
                return None;
            }
        };
        attr::reject_on_fields(cx, &data.fields, AGGREGATE);
        let event = check::required(cx, attrs.event, &input.ident, "the event enum");
        let command = check::required(cx, attrs.command, &input.ident, "the command enum");
        let error = check::required(
            cx,
            attrs.error,
            &input.ident,
            "the error a rejected command returns",
        );
        Some(AggregateStruct {
            input,
            krate: crate_path(attrs.krate),
            name: match &attrs.name {
                Some(lit) => lit.value(),
                None => case::kebab_case(&input.ident.unraw().to_string()),
            },
            name_lit: attrs.name,
            event: event?,
            command: command?,
            error: error?,
            services: attrs.services.unwrap_or_else(|| syn::parse_quote!(())),
            snapshot_every: attrs.snapshot_every,
            snapshot_version: attrs.snapshot_version,
        })
    }
}

/// The variants of an enum input; anything else is reported on its `struct` or `union` token.
fn enum_data<'a>(cx: &Ctxt, input: &'a DeriveInput, message: &str) -> Option<&'a DataEnum> {
    match &input.data {
        Data::Enum(data) => Some(data),
        Data::Struct(data) => {
            cx.error_spanned_by(data.struct_token, message);
            None
        }
        Data::Union(data) => {
            cx.error_spanned_by(data.union_token, message);
            None
        }
    }
}

/// `::annals` unless `crate = ".."` says otherwise.
pub(crate) fn crate_path(krate: Option<Path>) -> Path {
    krate.unwrap_or_else(|| syn::parse_quote!(::annals))
}

/// The snake_case method name for a variant, spanned on the variant so that rustc's "no function
/// named .." error points at it; none, reported, when it is a keyword no identifier can spell.
fn default_method(cx: &Ctxt, variant: &Ident, attr: Symbol, key: Symbol) -> Option<Ident> {
    let name = case::snake_case(&variant.unraw().to_string());
    let span: Span = variant.span();
    if syn::parse_str::<Ident>(&name).is_ok() {
        return Some(Ident::new(&name, span));
    }
    if matches!(name.as_str(), "self" | "super" | "crate" | "Self") {
        cx.error_spanned_by(
            variant,
            format!("the default method name `{name}` is a keyword; name the method with `#[{attr}({key} = ..)]`"),
        );
        return None;
    }
    // Other keywords (`type`, `match`) are valid as raw identifiers.
    Some(Ident::new_raw(&name, span))
}
