//! `impl Aggregate`: the type name and the four types, dispatching to the `Apply` impl of the
//! event enum and the `Handle` impl of the command enum.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Path, Type};

use crate::ast::{crate_path, AggregateStruct};
use crate::attr;
use crate::case;
use crate::ctxt::Ctxt;

pub(super) fn expand(input: &AggregateStruct<'_>) -> TokenStream {
    let krate = &input.krate;
    let private = quote!(#krate::__private);
    let (event, command) = (&input.event, &input.command);
    // Spanned on the named types, so a missing `Apply` or `Handle` impl is reported there.
    let apply = quote_spanned! {event.span()=>
        <Self as #private::Apply<#event>>::apply(self, __event)
    };
    let handle = quote_spanned! {command.span()=>
        <Self as #private::Handle<#command>>::handle(self, __command, __services)
    };
    let snapshots = input.snapshot_every.as_ref().map(|(every, lit)| {
        let every = proc_macro2::Literal::u64_unsuffixed(*every);
        let version = proc_macro2::Literal::u32_unsuffixed(
            input.snapshot_version.as_ref().map_or(1, |v| v.value),
        );
        // Spanned on `snapshot_every`, so a state without serde impls is reported there.
        let encode = quote_spanned!(lit.span()=> #private::encode_snapshot(self));
        let decode = quote_spanned!(lit.span()=> #private::decode_snapshot(__state));
        quote! {
            const SNAPSHOT_EVERY: u64 = #every;
            const SNAPSHOT_VERSION: u32 = #version;

            fn encode_snapshot(
                &self,
            ) -> ::core::option::Option<
                ::core::result::Result<#private::Payload, #private::serde_json::Error>,
            > {
                #encode
            }

            fn decode_snapshot(
                __state: &#private::Payload,
            ) -> ::core::option::Option<::core::result::Result<Self, #private::serde_json::Error>> {
                #decode
            }
        }
    });
    let command_name = quote_spanned! {command.span()=>
        fn command_name(__command: &<Self as #private::Aggregate>::Command) -> &'static str {
            <Self as #private::Handle<#command>>::command_name(__command)
        }
    };
    impl_aggregate(
        input.input,
        krate,
        &input.name,
        Types {
            event,
            command,
            error: &input.error,
            services: &input.services,
        },
        quote!(#snapshots #command_name),
        apply,
        handle,
    )
}

/// A stub impl that lets the rest of the program type-check while the errors are reported:
/// from the attributes alone, read again without reporting (the first pass did), and only
/// when the input is a struct naming its event and error types. A missing command type is
/// stood in for by `()`: `Handle` impls need the `Aggregate` impl to exist, not its command
/// type.
pub(super) fn fallback(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let attrs = attr::aggregate_attrs(&cx, &input.attrs);
    cx.discard();
    let (Data::Struct(_), Some(event), Some(error)) =
        (&input.data, attrs.event.get(), attrs.error.get())
    else {
        return TokenStream::new();
    };
    let command = attrs.command.get().unwrap_or_else(|| syn::parse_quote!(()));
    let services = attrs.services.unwrap_or_else(|| syn::parse_quote!(()));
    let name = match &attrs.name {
        Some(lit) => lit.value(),
        None => case::kebab_case(&syn::ext::IdentExt::unraw(&input.ident).to_string()),
    };
    impl_aggregate(
        input,
        &crate_path(attrs.krate),
        &name,
        Types {
            event: &event,
            command: &command,
            error: &error,
            services: &services,
        },
        TokenStream::new(),
        quote!(::core::unimplemented!()),
        quote!(::core::future::pending()),
    )
}

/// The associated types of an `Aggregate` impl.
struct Types<'a> {
    event: &'a Type,
    command: &'a Type,
    error: &'a Type,
    services: &'a Type,
}

fn impl_aggregate(
    input: &DeriveInput,
    krate: &Path,
    name: &str,
    types: Types<'_>,
    snapshots: TokenStream,
    apply: TokenStream,
    handle: TokenStream,
) -> TokenStream {
    let Types {
        event,
        command,
        error,
        services,
    } = types;
    let private = quote!(#krate::__private);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #private::Aggregate for #ident #ty_generics #where_clause {
            const TYPE: &'static str = #name;
            type Event = #event;
            type Command = #command;
            type Error = #error;
            type Services = #services;
            #snapshots

            fn apply(&mut self, __event: &<Self as #private::Aggregate>::Event) {
                #apply
            }

            fn handle(
                &self,
                __command: &<Self as #private::Aggregate>::Command,
                __services: &<Self as #private::Aggregate>::Services,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    ::std::vec::Vec<<Self as #private::Aggregate>::Event>,
                    <Self as #private::Aggregate>::Error,
                >,
            > + ::core::marker::Send {
                #handle
            }
        }
    }
}
