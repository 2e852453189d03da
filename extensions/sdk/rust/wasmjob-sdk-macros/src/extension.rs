//! `#[extension]`: parse the identity and job list, generate `plugin_init` /
//! `plugin_cleanup`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{bracketed, Ident, LitStr, Path, Token};

use crate::info_ident;
use crate::job::encoding_tokens;
use crate::scan;

enum Value {
    Str(LitStr),
    Paths(Punctuated<Path, Token![,]>),
}

struct Arg {
    key: Ident,
    value: Value,
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let value = if input.peek(syn::token::Bracket) {
            let inner;
            bracketed!(inner in input);
            Value::Paths(inner.parse_terminated(Path::parse)?)
        } else {
            Value::Str(input.parse().map_err(|e| {
                syn::Error::new(e.span(), format!("`{}` takes a string, e.g. {} = \"...\"", key, key))
            })?)
        };
        Ok(Arg { key, value })
    }
}

struct Args {
    id: LitStr,
    name: LitStr,
    version: LitStr,
    state: Option<TokenStream>,
    jobs: Vec<Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let list = Punctuated::<Arg, Token![,]>::parse_terminated(input)?;
        let (mut id, mut name, mut version, mut state, mut jobs) = (None, None, None, None, None);
        for arg in list {
            let key = arg.key.to_string();
            match (key.as_str(), arg.value) {
                ("id", Value::Str(s)) => id = Some(s),
                ("name", Value::Str(s)) => name = Some(s),
                ("version", Value::Str(s)) => version = Some(s),
                ("description", Value::Str(_)) | ("author", Value::Str(_)) => {}
                ("state", Value::Str(s)) => state = Some(encoding_tokens(&s)?),
                ("jobs", Value::Paths(p)) => jobs = Some(p.into_iter().collect::<Vec<_>>()),
                ("jobs", Value::Str(s)) => {
                    return Err(syn::Error::new(s.span(), "`jobs` lists the job functions: jobs = [my_job, other_job]"))
                }
                (_, Value::Paths(p)) => {
                    return Err(syn::Error::new(p.span(), format!("`{}` takes a string, not a list", key)))
                }
                _ => {
                    return Err(syn::Error::new(
                        arg.key.span(),
                        format!(
                            "unknown #[extension] option `{}`: use id, name, version, jobs, state, description or author",
                            key
                        ),
                    ))
                }
            }
        }
        let need = |v: Option<LitStr>, what: &str| {
            v.ok_or_else(|| syn::Error::new(Span::call_site(), format!("#[extension] needs `{} = \"...\"`", what)))
        };
        let jobs = jobs.ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "#[extension] needs `jobs = [...]`: the #[job] functions the extension registers",
            )
        })?;
        Ok(Args { id: need(id, "id")?, name: need(name, "name")?, version: need(version, "version")?, state, jobs })
    }
}

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let args: Args = match syn::parse2(args) {
        Ok(a) => a,
        Err(e) => {
            let err = e.to_compile_error();
            return quote!(#err #item);
        }
    };
    if args.id.value().is_empty() {
        let err = syn::Error::new(args.id.span(), "`id` must not be empty").to_compile_error();
        return quote!(#err #item);
    }

    let sources = scan::SourceScan::of_crate();
    let mut problems = TokenStream::new();
    let mut infos = Vec::new();
    for path in &args.jobs {
        let last = match path.segments.last() {
            Some(seg) => seg.ident.clone(),
            None => continue,
        };
        if let Some(msg) = sources.as_ref().and_then(|s| s.problem_with(&last)) {
            problems.extend(syn::Error::new(path.span(), msg).to_compile_error());
            continue;
        }
        // `jobs::scan` reads the constant `jobs::__wasmjob_job_scan` that #[job] wrote;
        // the span makes a missing one point at the name in the list.
        let mut info_path = path.clone();
        if let Some(seg) = info_path.segments.last_mut() {
            seg.ident = info_ident(&last);
        }
        infos.push(quote_spanned!(path.span()=> &#info_path));
    }
    if let Some(sources) = &sources {
        let listed: Vec<String> =
            args.jobs.iter().filter_map(|p| p.segments.last()).map(|s| s.ident.to_string()).collect();
        for name in sources.unlisted_jobs(&listed) {
            let msg = format!(
                "`{name}` is marked #[job] but is not listed in `jobs = [...]`: add it (jobs = [{}{name}]) or remove its #[job]",
                listed.iter().map(|l| format!("{}, ", l)).collect::<String>()
            );
            problems.extend(syn::Error::new(Span::call_site(), msg).to_compile_error());
        }
    }
    if !problems.is_empty() {
        return quote!(#problems #item);
    }

    let (id, name, version) = (&args.id, &args.name, &args.version);
    let declared = match &args.state {
        Some(e) => quote!(::std::option::Option::Some(#e)),
        None => quote!(::std::option::Option::None),
    };
    quote! {
        // The marker struct is only a place for the attribute; never constructed.
        #[allow(dead_code)]
        #item

        #[doc(hidden)]
        const __WASMJOB_JOBS: &[&::wasmjob_sdk::__private::JobInfo] = &[#(#infos),*];

        #[doc(hidden)]
        const __WASMJOB_EXTENSION: ::wasmjob_sdk::__private::ExtensionInfo = ::wasmjob_sdk::__private::ExtensionInfo {
            id: #id,
            name: #name,
            version: #version,
            encoding: ::wasmjob_sdk::__private::extension_encoding(#declared, __WASMJOB_JOBS),
            jobs: __WASMJOB_JOBS,
        };

        #[doc(hidden)]
        #[no_mangle]
        pub extern "C" fn plugin_init() -> i32 {
            ::wasmjob_sdk::__private::plugin_init(&__WASMJOB_EXTENSION)
        }

        #[doc(hidden)]
        #[no_mangle]
        pub extern "C" fn plugin_cleanup() -> i32 {
            ::wasmjob_sdk::__private::plugin_cleanup(&__WASMJOB_EXTENSION)
        }
    }
}
