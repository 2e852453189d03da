//! A look at the crate's own sources so `jobs = [...]` mistakes get a plain
//! message instead of "cannot find value `__wasmjob_job_x`".
//!
//! Advisory only: the generated code references each job's constant, so the
//! compiler still catches whatever this scan cannot see. It reports a name
//! only when it is sure: a function exists without `#[job]`, or no function
//! or macro invocation in `src/` mentions the name at all.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::{Attribute, Item};

#[derive(Default)]
pub struct SourceScan {
    job_fns: HashSet<String>,
    plain_fns: HashSet<String>,
    macro_idents: HashSet<String>,
}

impl SourceScan {
    /// Scan `$CARGO_MANIFEST_DIR/src`; `None` when there is nothing to read.
    pub fn of_crate() -> Option<SourceScan> {
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
        let mut scan = SourceScan::default();
        let mut files = 0;
        scan.walk(&Path::new(&dir).join("src"), 0, &mut files);
        if files == 0 {
            None
        } else {
            Some(scan)
        }
    }

    /// A message when `name` surely is not a `#[job]` function.
    pub fn problem_with(&self, name: &syn::Ident) -> Option<String> {
        let n = name.to_string();
        if self.job_fns.contains(&n) || self.macro_idents.contains(&n) {
            return None;
        }
        if self.plain_fns.contains(&n) {
            return Some(format!(
                "`{n}` is listed in `jobs = [...]` but is not a job: put #[job(name = \"...\")] on `fn {n}(ctx: &JobContext, state: &mut YourState) -> Result<()>`"
            ));
        }
        Some(format!(
            "`{n}` is listed in `jobs = [...]` but there is no function `{n}`: list the functions marked #[job]"
        ))
    }

    /// The `#[job]` functions missing from `listed`, in name order.
    pub fn unlisted_jobs(&self, listed: &[String]) -> Vec<String> {
        let mut missing: Vec<String> = self.job_fns.iter().filter(|n| !listed.contains(n)).cloned().collect();
        missing.sort();
        missing
    }

    fn walk(&mut self, dir: &Path, depth: usize, files: &mut usize) {
        let entries = match fs::read_dir(dir) {
            Ok(e) if depth < 8 => e,
            _ => return,
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                self.walk(&path, depth + 1, files);
            } else if path.extension().map_or(false, |e| e == "rs") {
                if let Some(file) = fs::read_to_string(&path).ok().and_then(|t| syn::parse_file(&t).ok()) {
                    *files += 1;
                    self.items(&file.items);
                }
            }
        }
    }

    fn items(&mut self, items: &[Item]) {
        for item in items {
            match item {
                Item::Fn(f) => {
                    let name = f.sig.ident.to_string();
                    if f.attrs.iter().any(is_job_attr) {
                        self.job_fns.insert(name);
                    } else {
                        self.plain_fns.insert(name);
                    }
                }
                Item::Mod(m) => {
                    if let Some((_, inner)) = &m.content {
                        self.items(inner);
                    }
                }
                Item::Macro(m) => self.idents(m.mac.tokens.clone()),
                _ => {}
            }
        }
    }

    fn idents(&mut self, tokens: TokenStream) {
        for tt in tokens {
            match tt {
                TokenTree::Ident(i) => {
                    self.macro_idents.insert(i.to_string());
                }
                TokenTree::Group(g) => self.idents(g.stream()),
                _ => {}
            }
        }
    }
}

fn is_job_attr(attr: &Attribute) -> bool {
    attr.path
        .segments
        .last()
        .map_or(false, |s| s.ident == "job" || s.ident == "spacedrive_job")
}
