//! The typed model of a derive input: what each variant is called, stored as and dispatched to,
//! with the defaults filled in. It borrows the syn nodes so later errors can point at them.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, ExprPath, Fields, Ident, LitInt, LitStr, Path, Type};

use crate::attr;
use crate::case;
use crate::ctxt::Ctxt;

/// An enum with `#[derive(Event)]`.
pub(crate) struct EventEnum<'a> {
    pub(crate) input: &'a DeriveInput,
    pub(crate) krate: Path,
    /// The state type that gets `impl Apply<Enum>`, from `#[event(apply = ..)]`.
    pub(crate) apply: Option<Type>,
    /// Type names of removed events, from `#[event(removed(..))]`.
    pub(crate) removed: Vec<LitStr>,
    /// `None` when the input is not an enum (already reported).
    pub(crate) variants: Option<Vec<EventVariant<'a>>>,
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
    /// `None` when missing (already reported).
    pub(crate) aggregate: Option<Type>,
    /// `None` when the input is not an enum (already reported).
    pub(crate) variants: Option<Vec<CommandVariant<'a>>>,
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
    pub(crate) name_lit: Option<LitStr>,
    /// `None` when missing (already reported), as for `command` and `error`.
    pub(crate) event: Option<Type>,
    pub(crate) command: Option<Type>,
    pub(crate) error: Option<Type>,
    pub(crate) services: Type,
    /// `snapshot_every = N`, with the literal for errors.
    pub(crate) snapshot_every: Option<(u64, LitInt)>,
    /// `snapshot_version = V`.
    pub(crate) snapshot_version: Option<attr::VersionLit>,
    /// False when the input is not a struct (already reported).
    pub(crate) is_struct: bool,
}

impl<'a> EventEnum<'a> {
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let attrs = attr::event_attrs(cx, &input.attrs);
        let variants = match &input.data {
            Data::Enum(data) => {
                attr::serde_enum_attrs(cx, &input.attrs);
                Some(
                    data.variants
                        .iter()
                        .map(|variant| {
                            let event = attr::event_variant_attrs(cx, &variant.attrs);
                            let serde = attr::serde_variant_attrs(cx, &variant.attrs);
                            attr::reject_on_fields(cx, &variant.fields, "event");
                            let ident = &variant.ident;
                            EventVariant {
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
                                apply_method: event
                                    .apply
                                    .unwrap_or_else(|| default_method(cx, ident, "event", "apply")),
                            }
                        })
                        .collect(),
                )
            }
            Data::Struct(data) => {
                cx.error_spanned_by(data.struct_token, EVENT_ON_NON_ENUM);
                None
            }
            Data::Union(data) => {
                cx.error_spanned_by(data.union_token, EVENT_ON_NON_ENUM);
                None
            }
        };
        EventEnum {
            input,
            krate: crate_path(attrs.krate),
            apply: attrs.apply,
            removed: attrs.removed,
            variants,
        }
    }
}

const EVENT_ON_NON_ENUM: &str =
    "`#[derive(Event)]` only supports enums: each variant is one event type";
const COMMAND_ON_NON_ENUM: &str =
    "`#[derive(Command)]` only supports enums: each variant is one command";
const AGGREGATE_ON_NON_STRUCT: &str =
    "`#[derive(Aggregate)]` only supports structs: the struct is the aggregate's state";

impl<'a> CommandEnum<'a> {
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let attrs = attr::command_attrs(cx, &input.attrs);
        let variants = match &input.data {
            Data::Enum(data) => Some(
                data.variants
                    .iter()
                    .map(|variant| {
                        let command = attr::command_variant_attrs(cx, &variant.attrs);
                        attr::reject_on_fields(cx, &variant.fields, "command");
                        let handler = match command.handler {
                            Some(path) => {
                                let method = match path.qself {
                                    None => path.path.get_ident().cloned(),
                                    Some(_) => None,
                                };
                                match method {
                                    Some(ident) => Handler::Method(ident),
                                    None => Handler::Path(path),
                                }
                            }
                            None => Handler::Method(default_method(
                                cx,
                                &variant.ident,
                                "command",
                                "handler",
                            )),
                        };
                        CommandVariant {
                            ident: &variant.ident,
                            fields: &variant.fields,
                            handler,
                            is_async: attrs.is_async || command.is_async,
                            services: attrs.services || command.services,
                        }
                    })
                    .collect(),
            ),
            Data::Struct(data) => {
                cx.error_spanned_by(data.struct_token, COMMAND_ON_NON_ENUM);
                None
            }
            Data::Union(data) => {
                cx.error_spanned_by(data.union_token, COMMAND_ON_NON_ENUM);
                None
            }
        };
        // On anything but an enum the one error is that; a missing key would only add noise.
        if variants.is_some() && !attrs.keys.iter().any(|key| key == "aggregate") {
            cx.error_spanned_by(
                &input.ident,
                "`#[command(aggregate = ..)]` is required: it names the aggregate whose methods handle these commands",
            );
        }
        CommandEnum {
            input,
            krate: crate_path(attrs.krate),
            aggregate: attrs.aggregate,
            variants,
        }
    }
}

impl<'a> AggregateStruct<'a> {
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let attrs = attr::aggregate_attrs(cx, &input.attrs);
        match &input.data {
            Data::Struct(data) => attr::reject_on_fields(cx, &data.fields, "aggregate"),
            Data::Enum(data) => cx.error_spanned_by(data.enum_token, AGGREGATE_ON_NON_STRUCT),
            Data::Union(data) => cx.error_spanned_by(data.union_token, AGGREGATE_ON_NON_STRUCT),
        }
        let is_struct = matches!(input.data, Data::Struct(_));
        for (key, value, what) in [
            ("event", &attrs.event, "the event enum"),
            ("command", &attrs.command, "the command enum"),
            (
                "error",
                &attrs.error,
                "the error a rejected command returns",
            ),
        ] {
            if value.is_none() && !attrs.keys.iter().any(|written| written == key) {
                cx.error_spanned_by(
                    &input.ident,
                    format!("`#[aggregate({key} = ..)]` is required: it names {what}"),
                );
            }
        }
        AggregateStruct {
            input,
            krate: crate_path(attrs.krate),
            name: match &attrs.name {
                Some(lit) => lit.value(),
                None => case::kebab_case(&input.ident.unraw().to_string()),
            },
            name_lit: attrs.name,
            event: attrs.event,
            command: attrs.command,
            error: attrs.error,
            services: attrs.services.unwrap_or_else(|| syn::parse_quote!(())),
            snapshot_every: attrs.snapshot_every,
            snapshot_version: attrs.snapshot_version,
            is_struct,
        }
    }
}

/// `::annals` unless `crate = ".."` says otherwise.
fn crate_path(krate: Option<Path>) -> Path {
    krate.unwrap_or_else(|| syn::parse_quote!(::annals))
}

/// The snake_case method name for a variant, spanned on the variant so that rustc's "no function
/// named .." error points at it.
fn default_method(cx: &Ctxt, variant: &Ident, attr: &str, key: &str) -> Ident {
    let name = case::snake_case(&variant.unraw().to_string());
    let span: Span = variant.span();
    if syn::parse_str::<Ident>(&name).is_ok() {
        return Ident::new(&name, span);
    }
    if matches!(name.as_str(), "self" | "super" | "crate" | "Self") {
        cx.error_spanned_by(
            variant,
            format!("the default method name `{name}` is a keyword; name the method with `#[{attr}({key} = ..)]`"),
        );
        return Ident::new("__annals_unnamed", span);
    }
    // Other keywords (`type`, `match`) are valid as raw identifiers.
    Ident::new_raw(&name, span)
}
