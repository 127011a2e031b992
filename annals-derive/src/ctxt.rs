//! Error collection: every rule that fails adds its error here, so one build reports all the
//! mistakes of one input instead of stopping at the first (serde_derive's `Ctxt`).

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// The errors found so far in one derive input.
///
/// It must be consumed by [`Ctxt::check`] (or, for a second pass whose errors the first one
/// already reported, [`Ctxt::discard`]): dropping it unchecked would lose errors, and panics
/// as a bug in this crate, the way serde_derive's `Ctxt` does.
pub(crate) struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
    consumed: bool,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Vec::new()),
            consumed: false,
        }
    }

    /// Adds an error spanned on `tokens` (on all of them, so a multi-token path is underlined whole).
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, message: M) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Adds an error syn reported while parsing.
    pub(crate) fn syn_error(&self, error: syn::Error) {
        self.errors.borrow_mut().push(error);
    }

    /// Ends the collection: the model when one was built and nothing was reported, otherwise
    /// every error merged into one.
    pub(crate) fn check<M>(mut self, model: Option<M>) -> Result<M, syn::Error> {
        self.consumed = true;
        let mut errors = self.errors.take().into_iter();
        match (errors.next(), model) {
            (None, Some(model)) => Ok(model),
            (Some(mut combined), _) => {
                for error in errors {
                    combined.combine(error);
                }
                Err(combined)
            }
            // Every way of building no model reports why; reaching this is a bug here, and an
            // error at least keeps the user's build from silently missing the impls.
            (None, None) => Err(syn::Error::new(
                Span::call_site(),
                "annals-derive built no model and reported no error; please report this bug",
            )),
        }
    }

    /// Drops the errors of a second pass over attributes whose errors were already reported.
    pub(crate) fn discard(mut self) {
        self.consumed = true;
    }
}

impl Drop for Ctxt {
    #[allow(clippy::panic)] // a bug in this crate, not a mistake in the user's input
    fn drop(&mut self) {
        if !self.consumed && !std::thread::panicking() {
            panic!("annals-derive: a `Ctxt` was dropped without `check()`, losing its errors");
        }
    }
}
