//! Derive macros for eventsource.
use proc_macro::TokenStream;
/// x
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(_input: TokenStream) -> TokenStream { TokenStream::new() }
/// x
#[proc_macro_derive(Command, attributes(command))]
pub fn derive_command(_input: TokenStream) -> TokenStream { TokenStream::new() }
/// x
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(_input: TokenStream) -> TokenStream { TokenStream::new() }
