//! `impl Handle<Enum>` for the aggregate: one handler call per command variant.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Data, DeriveInput, Path, Type};

use super::{destructure, respan, type_prefix};
use crate::ast::{crate_path, CommandEnum, CommandVariant, Handler};
use crate::attr;
use crate::ctxt::Ctxt;

pub(super) fn expand(input: &CommandEnum<'_>) -> TokenStream {
    let (aggregate, variants) = (&input.aggregate, &input.variants);
    let ident = &input.input.ident;

    let body = if variants.is_empty() {
        quote!(::core::future::ready(match *__command {}))
    } else {
        let decided = decided(&input.krate, &quote!(#aggregate));
        let services_type = services_type(&input.krate, aggregate);
        let arms = variants.iter().map(|variant| {
            let (pattern, bindings) = destructure(ident, variant.ident, variant.fields);
            let function = handler(aggregate, variant);
            let services = variant.services.then(|| quote!(__services));
            let args = bindings
                .iter()
                .map(|binding| quote!(#binding))
                .chain(services);
            // Spanned on the variant, so a missing handler is reported there.
            let call = if variant.is_async {
                // An async handler is called directly (its future borrows the arguments, which
                // no `fn` pointer type here can name); `signature_check` explains a mistake.
                quote_spanned! {variant.ident.span()=>
                    #function(self, #(#args),*).await
                }
            } else {
                // Called through the `fn` pointer type the variant expects: a field taken by
                // value, an `async fn` without `#[command(async)]` or one event returned instead
                // of a `Vec` is reported as "expected fn pointer `fn(&Aggregate, &_) ->
                // Result<Vec<Event>, Error>`, found fn item ..", the one error of the mistake.
                // Fields are `&_` because a handler may take what a field derefs to (`&str` for
                // a `String`). An optimized build calls the handler directly.
                let params = bindings
                    .iter()
                    .map(|_| quote!(&_))
                    .chain(variant.services.then(|| quote!(&#services_type)));
                quote_spanned! {variant.ident.span()=>
                    let __handler: fn(&#aggregate, #(#params),*) -> #decided = #function;
                    __handler(self, #(#args),*)
                }
            };
            quote!(#pattern => { #call })
        });
        let dispatch = quote!(match __command { #(#arms)* });
        if variants.iter().any(|variant| variant.is_async) {
            quote!(async move { #dispatch })
        } else {
            quote!(::core::future::ready(#dispatch))
        }
    };
    let allow = variants
        .is_empty()
        .then(|| quote!(#[allow(unreachable_code)]));

    let names = variants.iter().map(|variant| {
        let variant_ident = variant.ident;
        let name = syn::LitStr::new(&variant_ident.to_string(), variant_ident.span());
        quote!(#ident::#variant_ident { .. } => #name,)
    });
    let (_, ty_generics, _) = input.input.generics.split_for_impl();
    let command_name = quote! {
        fn command_name(__command: &#ident #ty_generics) -> &'static str {
            match *__command { #(#names)* }
        }
    };
    let mut tokens = impl_handle(
        input.input,
        &input.krate,
        aggregate,
        quote! { #allow },
        body,
        command_name,
    );
    tokens.extend(signature_check(input));
    tokens
}

/// What a handler returns: `Result<Vec<Event>, Error>` of `aggregate`.
fn decided(krate: &Path, aggregate: &TokenStream) -> TokenStream {
    let private = quote!(#krate::__private);
    quote! {
        ::core::result::Result<
            ::std::vec::Vec<<#aggregate as #private::Aggregate>::Event>,
            <#aggregate as #private::Aggregate>::Error,
        >
    }
}

/// The services a handler receives: `<Aggregate as Aggregate>::Services`.
fn services_type(krate: &Path, aggregate: &Type) -> TokenStream {
    quote!(<#aggregate as #krate::__private::Aggregate>::Services)
}

/// The function a variant calls: `Aggregate::method`, spanned on the variant so that errors
/// about it point there, or the path written in `handler = ..`.
fn handler(aggregate: &Type, variant: &CommandVariant<'_>) -> TokenStream {
    match &variant.handler {
        Handler::Method(method) => {
            let prefix = respan(type_prefix(aggregate), variant.ident.span());
            quote!(#prefix::#method)
        }
        Handler::Path(path) => quote!(#path),
    }
}

/// For async handlers, which the dispatch calls directly: a function nothing calls, which
/// coerces each to the `fn` pointer type its variant expects, spanned on the variant, and awaits
/// its result as `Result<Vec<Event>, Error>`. A field taken by value is reported there as
/// "expected fn pointer `fn(&'__a Aggregate, &'__a _) -> _`, found fn item ..", beside the
/// dispatch's own error. One named lifetime, because the future an async handler returns
/// borrows its arguments. Nothing of it runs.
fn signature_check(input: &CommandEnum<'_>) -> TokenStream {
    let asynchronous: Vec<_> = input.variants.iter().filter(|v| v.is_async).collect();
    if asynchronous.is_empty() {
        return TokenStream::new();
    }
    let krate = &input.krate;
    let aggregate = &input.aggregate;
    let ident = &input.input.ident;
    let decided = decided(krate, &quote!(#aggregate));
    let services = services_type(krate, aggregate);
    let arms = asynchronous.iter().map(|variant| {
        let (pattern, bindings) = destructure(ident, variant.ident, variant.fields);
        let function = handler(aggregate, variant);
        let params = bindings
            .iter()
            .map(|_| quote!(&'__a _))
            .chain(variant.services.then(|| quote!(&'__a #services)));
        let args = bindings
            .iter()
            .map(|binding| quote!(#binding))
            .chain(variant.services.then(|| quote!(__services)));
        let check = quote_spanned! {variant.ident.span()=>
            let __handler: fn(&'__a #aggregate, #(#params),*) -> _ = #function;
            let _: #decided = __handler(__aggregate, #(#args),*).await;
        };
        quote!(#pattern => { #check })
    });
    let rest = (asynchronous.len() < input.variants.len()).then(|| quote!(_ => {}));
    let mut generics = input.input.generics.clone();
    generics.params.insert(0, syn::parse_quote!('__a));
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let (_, ty_generics, _) = input.input.generics.split_for_impl();
    quote! {
        const _: () = {
            #[allow(dead_code, unused_variables)]
            async fn __handler_signatures #impl_generics (
                __aggregate: &'__a #aggregate,
                __command: &'__a #ident #ty_generics,
                __services: &'__a #services,
            ) #where_clause {
                match __command {
                    #(#arms)*
                    #rest
                }
            }
        };
    }
}

/// A stub impl that lets the rest of the program type-check while the errors are reported:
/// from the attributes alone, read again without reporting (the first pass did), and only
/// when the input is an enum naming its aggregate.
pub(super) fn fallback(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let attrs = attr::command_attrs(&cx, &input.attrs);
    cx.discard();
    match (&input.data, attrs.aggregate.get()) {
        (Data::Enum(_), Some(aggregate)) => impl_handle(
            input,
            &crate_path(attrs.krate),
            &aggregate,
            TokenStream::new(),
            quote!(::core::future::pending()),
            TokenStream::new(),
        ),
        _ => TokenStream::new(),
    }
}

fn impl_handle(
    input: &DeriveInput,
    krate: &Path,
    aggregate: &Type,
    fn_attrs: TokenStream,
    body: TokenStream,
    command_name: TokenStream,
) -> TokenStream {
    let private = quote!(#krate::__private);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #private::Handle<#ident #ty_generics> for #aggregate #where_clause {
            #command_name

            #fn_attrs
            fn handle(
                &self,
                __command: &#ident #ty_generics,
                __services: &<Self as #private::Aggregate>::Services,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    ::std::vec::Vec<<Self as #private::Aggregate>::Event>,
                    <Self as #private::Aggregate>::Error,
                >,
            > + ::core::marker::Send {
                #body
            }
        }
    }
}
