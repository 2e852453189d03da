//! `#[job]`: check the function's shape and generate its `execute_<fn>` export.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse2, FnArg, ItemFn, Lit, ReturnType, Type};

use crate::info_ident;

const SHAPE: &str = "expected `fn NAME(ctx: &JobContext, state: &mut YourState) -> Result<()>`";

struct JobArgs {
    name: Option<String>,
    state: Option<TokenStream>,
    resumable: bool,
    params: Option<Type>,
}

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            return error_with(item, Span::call_site(), "#[job] goes on a function: ".to_owned() + SHAPE);
        }
    };
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => return with_item(e.to_compile_error(), &func),
    };

    let fn_name = &func.sig.ident;
    let job_name = args.name.unwrap_or_else(|| fn_name.to_string());
    let export = format_ident!("execute_{}", fn_name);
    let export_str = export.to_string();
    let info = info_ident(fn_name);
    let resumable = args.resumable;
    let encoding = match args.state {
        Some(e) => quote!(::std::option::Option::Some(#e)),
        None => quote!(::std::option::Option::None),
    };
    // Written even when the signature is wrong, so #[extension] does not add
    // a second, confusing error about a missing job.
    let info_const = quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        pub(crate) const #info: ::wasmjob_sdk::__private::JobInfo = ::wasmjob_sdk::__private::JobInfo {
            name: #job_name,
            export: #export_str,
            resumable: #resumable,
            encoding: #encoding,
        };
    };
    let state_ty = match check_signature(&func) {
        Ok(ty) => ty,
        Err(e) => {
            let err = e.to_compile_error();
            return quote!(#err #func #info_const);
        }
    };
    let ctx_ty_span = func.sig.inputs.first().map(|a| a.span()).unwrap_or_else(Span::call_site);
    // Spanned on the parameters so a type the SDK cannot use points there.
    let call = match &args.params {
        None => quote_spanned! {ctx_ty_span=>
            ::wasmjob_sdk::__private::run_job::<#state_ty, _>(
                &#info, ctx_ptr, ctx_len, state_ptr, state_len, #fn_name,
            )
        },
        // `S: From<P>` is required here: a missing impl points at `params = P`.
        Some(params) => quote_spanned! {params.span()=>
            ::wasmjob_sdk::__private::run_job_with_params::<#state_ty, #params, _>(
                &#info, ctx_ptr, ctx_len, state_ptr, state_len, #fn_name,
            )
        },
    };

    quote! {
        #func

        #info_const

        #[doc(hidden)]
        #[no_mangle]
        pub extern "C" fn #export(ctx_ptr: i32, ctx_len: i32, state_ptr: i32, state_len: i32) -> i32 {
            #call
        }
    }
}

/// One `key = value` of `#[job(...)]`: a literal, or a type for `params`.
enum ArgValue {
    Lit(Lit),
    Type(Type),
}

struct JobArg {
    key: syn::Ident,
    value: ArgValue,
}

impl syn::parse::Parse for JobArg {
    fn parse(input: syn::parse::ParseStream) -> syn::Result<Self> {
        let key: syn::Ident = input.parse()?;
        input.parse::<syn::Token![=]>()?;
        let value = if input.peek(Lit) { ArgValue::Lit(input.parse()?) } else { ArgValue::Type(input.parse()?) };
        Ok(JobArg { key, value })
    }
}

const OPTIONS: &str =
    "#[job] takes `name = \"...\"`, `params = YourParams`, `state = \"json\" | \"msgpack\"` and `resumable = true | false`";

fn parse_args(args: TokenStream) -> syn::Result<JobArgs> {
    let list = syn::parse::Parser::parse2(
        syn::punctuated::Punctuated::<JobArg, syn::Token![,]>::parse_terminated,
        args,
    )
    .map_err(|e| syn::Error::new(e.span(), OPTIONS))?;
    let mut out = JobArgs { name: None, state: None, resumable: true, params: None };
    for arg in list {
        let key = arg.key.to_string();
        match (key.as_str(), arg.value) {
            ("name", ArgValue::Lit(Lit::Str(s))) if !s.value().is_empty() => out.name = Some(s.value()),
            ("state", ArgValue::Lit(Lit::Str(s))) => out.state = Some(encoding_tokens(&s)?),
            ("resumable", ArgValue::Lit(Lit::Bool(b))) => out.resumable = b.value,
            ("params", ArgValue::Type(t)) => out.params = Some(t),
            ("params", ArgValue::Lit(Lit::Str(s))) => out.params = Some(s.parse()?),
            ("name", v) => return Err(syn::Error::new(span_of(&v), "`name` must be a non-empty string")),
            ("state", v) => return Err(syn::Error::new(span_of(&v), "`state` must be \"json\" or \"msgpack\"")),
            ("resumable", v) => return Err(syn::Error::new(span_of(&v), "`resumable` must be true or false")),
            ("params", v) => return Err(syn::Error::new(span_of(&v), "`params` names a type: params = YourParams")),
            _ => {
                return Err(syn::Error::new(
                    arg.key.span(),
                    format!("unknown #[job] option `{}`: use name, params, state or resumable", key),
                ))
            }
        }
    }
    Ok(out)
}

fn span_of(value: &ArgValue) -> Span {
    match value {
        ArgValue::Lit(l) => l.span(),
        ArgValue::Type(t) => t.span(),
    }
}

/// `"json"` / `"msgpack"` as a `StateEncoding` expression.
pub fn encoding_tokens(lit: &syn::LitStr) -> syn::Result<TokenStream> {
    match lit.value().as_str() {
        "json" => Ok(quote!(::wasmjob_sdk::StateEncoding::Json)),
        "msgpack" => Ok(quote!(::wasmjob_sdk::StateEncoding::Msgpack)),
        other => Err(syn::Error::new(
            lit.span(),
            format!("unknown state encoding \"{}\": use \"json\" or \"msgpack\"", other),
        )),
    }
}

/// Check `fn NAME(ctx: &JobContext, state: &mut S) -> Result<()>` and return `S`.
fn check_signature(func: &ItemFn) -> syn::Result<Type> {
    let sig = &func.sig;
    let fail = |span: Span, what: &str| Err(syn::Error::new(span, format!("#[job]: {}; {}", what, SHAPE)));
    if let Some(a) = &sig.asyncness {
        return fail(a.span(), "a job cannot be async");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return fail(sig.generics.span(), "a job cannot be generic");
    }
    if let Some(abi) = &sig.abi {
        return fail(abi.span(), "a job is a plain Rust function (the macro writes the extern \"C\" export)");
    }
    if sig.inputs.len() != 2 {
        let span = if sig.inputs.is_empty() { sig.ident.span() } else { sig.inputs.span() };
        return fail(span, &format!("a job takes exactly two parameters, found {}", sig.inputs.len()));
    }
    let typed = |arg: &FnArg| -> syn::Result<Type> {
        match arg {
            FnArg::Typed(t) => Ok((*t.ty).clone()),
            FnArg::Receiver(r) => fail(r.span(), "a job is a free function, not a method"),
        }
    };
    let ctx_ty = typed(&sig.inputs[0])?;
    match &ctx_ty {
        Type::Reference(r) if r.mutability.is_none() && last_segment_is(&r.elem, "JobContext") => {}
        other => return fail(other.span(), "the first parameter must be `ctx: &JobContext`"),
    }
    let state_ty = match typed(&sig.inputs[1])? {
        Type::Reference(r) if r.mutability.is_some() => (*r.elem).clone(),
        other => return fail(other.span(), "the second parameter must be `state: &mut YourState`"),
    };
    match &sig.output {
        ReturnType::Type(_, ty) if last_segment_is(ty, "Result") && ok_type_is_unit(ty) => {}
        ReturnType::Type(_, ty) => {
            return fail(ty.span(), "a job returns `Result<()>` (its result is the final state)")
        }
        ReturnType::Default => return fail(sig.paren_token.span, "a job returns `Result<()>`"),
    }
    Ok(state_ty)
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().map_or(false, |s| s.ident == name),
        _ => false,
    }
}

/// False for `Result<T, ..>` with a `T` other than `()`; true when there are no arguments.
fn ok_type_is_unit(ty: &Type) -> bool {
    let args = match ty {
        Type::Path(p) => p.path.segments.last().map(|s| &s.arguments),
        _ => None,
    };
    match args {
        Some(syn::PathArguments::AngleBracketed(a)) => match a.args.first() {
            Some(syn::GenericArgument::Type(Type::Tuple(t))) => t.elems.is_empty(),
            _ => false,
        },
        _ => true,
    }
}

fn with_item(err: TokenStream, func: &ItemFn) -> TokenStream {
    quote!(#err #func)
}

fn error_with(item: TokenStream, span: Span, msg: String) -> TokenStream {
    let err = syn::Error::new(span, msg).to_compile_error();
    quote!(#err #item)
}
