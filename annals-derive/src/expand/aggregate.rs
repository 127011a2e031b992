//! `impl Aggregate`: the type name and the four types, dispatching to the `Apply` impl of the
//! event enum and the `Handle` impl of the command enum.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::AggregateStruct;

pub(super) fn expand(input: &AggregateStruct<'_>) -> TokenStream {
    let (Some(event), Some(command)) = (&input.event, &input.command) else {
        // Missing types were reported; the caller emits the fallback instead.
        return TokenStream::new();
    };
    let krate = &input.krate;
    let private = quote!(#krate::__private);
    // Spanned on the named types, so a missing `Apply` or `Handle` impl is reported there.
    let apply = quote_spanned! {event.span()=>
        <Self as #private::Apply<#event>>::apply(self, __event)
    };
    let handle = quote_spanned! {command.span()=>
        <Self as #private::Handle<#command>>::handle(self, __command, __services)
    };
    impl_aggregate(input, apply, handle)
}

/// A stub impl that lets the rest of the program type-check while the errors are reported;
/// none when the event or error type is missing or the input is not a struct. A missing
/// command type is stood in for by `()`: `Handle` impls need the `Aggregate` impl to exist, not
/// its command type.
pub(super) fn fallback(input: &AggregateStruct<'_>) -> TokenStream {
    if !input.is_struct {
        return TokenStream::new();
    }
    impl_aggregate(
        input,
        quote!(::core::unimplemented!()),
        quote!(::core::future::pending()),
    )
}

fn impl_aggregate(
    input: &AggregateStruct<'_>,
    apply: TokenStream,
    handle: TokenStream,
) -> TokenStream {
    let (Some(event), Some(error)) = (&input.event, &input.error) else {
        return TokenStream::new();
    };
    let unit: syn::Type = syn::parse_quote!(());
    let command = input.command.as_ref().unwrap_or(&unit);
    let krate = &input.krate;
    let private = quote!(#krate::__private);
    let ident = &input.input.ident;
    let (impl_generics, ty_generics, where_clause) = input.input.generics.split_for_impl();
    let name = &input.name;
    let services = &input.services;
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
