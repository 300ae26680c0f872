//! A guest's interpreters, as its store sees them ([`Family`]): the
//! children it created (closed when it goes) and, through the registry,
//! the live interpreters below it. A guest never reaches another tree.

use std::sync::{Arc, Weak};

use super::{Interpreter, Registry, Run};
use crate::error::Error;
use crate::job::Job;
use crate::language::Language;
use crate::limits::Limits;
use crate::store::{ChildJob, ChildRun, Family, FamilyError, Parent};

/// Children not closed by their creator are forgotten once closed, checked
/// when the list reaches this length.
const PRUNE_AT: usize = 32;

/// The [`Family`] of interpreter `me`.
pub(crate) struct Kin {
    me: u64,
    /// The language `me` runs: its children's unless they ask for another.
    language: Option<Language>,
    registry: Weak<Registry>,
    /// Interpreters `me` created and has not closed.
    children: Vec<Interpreter>,
}

impl Kin {
    pub(crate) fn new(me: u64, language: Option<Language>, registry: Weak<Registry>) -> Self {
        Kin {
            me,
            language,
            registry,
            children: Vec::new(),
        }
    }

    fn child(&self, id: u64) -> Result<&Interpreter, FamilyError> {
        self.children
            .iter()
            .find(|c| c.id().0 == id && !c.is_closed())
            .ok_or(FamilyError::NotFound)
    }

    /// The live interpreter `id` if it is below `me`.
    fn descendant(&self, id: u64) -> Option<Interpreter> {
        let registry = self.registry.upgrade()?;
        registry
            .get(id)
            .filter(|i| i.ancestors().contains(&self.me))
    }
}

impl Family for Kin {
    fn create(
        &mut self,
        mut parent: Parent,
        language: Option<Language>,
        limits: Limits,
    ) -> Result<(u64, Option<u64>), FamilyError> {
        let registry = self.registry.upgrade().ok_or(FamilyError::Closed)?;
        let language = language.or(self.language).unwrap_or(Language::JavaScript);
        let guest = registry
            .language(language)
            .map_err(|_| FamilyError::NotFound)?;
        // The directories stay open until the child's WASI context has
        // opened them again.
        let dirs = std::mem::take(&mut parent.dirs);
        let mut builder = super::InterpreterBuilder::new(&registry, &guest).limits(limits);
        for d in &dirs {
            builder = builder.dir(d.open_path(), d.guest.clone(), d.read_only);
        }
        let child = builder.child_of(parent).build();
        drop(dirs);
        match child {
            Ok(c) => {
                if self.children.len() >= PRUNE_AT {
                    self.children.retain(|c| !c.is_closed());
                }
                let done = (c.id().0, c.fuel_left());
                self.children.push(c);
                Ok(done)
            }
            Err(Error::Limit(_)) => Err(FamilyError::Limit),
            Err(Error::Instantiate(e)) if e.kind.is_limit() => Err(FamilyError::Limit),
            Err(_) => Err(FamilyError::Invalid),
        }
    }

    fn idle_child(&self, id: u64) -> Result<Option<u64>, FamilyError> {
        let child = self.child(id)?;
        if child.is_running() {
            return Err(FamilyError::Busy);
        }
        Ok(child.limits().fuel())
    }

    fn start(&mut self, id: u64, run: ChildRun) -> Result<Arc<ChildJob>, FamilyError> {
        let target = self.child(id)?.clone();
        let fuel = run.fuel;
        let source = match (target.language(), run.module) {
            (Some(Language::Python), None) => Run::python(run.source),
            (Some(Language::Python), Some(_)) => return Err(FamilyError::Invalid),
            (_, Some(name)) => Run::js_module(name, run.source),
            (_, None) => Run::js(run.source),
        };
        let mut job = source.deadline_cap(run.deadline_cap).fuel(fuel);
        for (name, end) in run.channels {
            job = job.channel(name, end);
        }
        let name = format!("subinterp-run-{id}");
        Job::spawn(name, move || {
            let result = target.run(job);
            let used = result.as_ref().ok().and_then(|r| r.stats.fuel_used);
            let unused = fuel.map(|f| f.saturating_sub(used.unwrap_or(f)));
            (result, unused)
        })
        .map_err(|_| FamilyError::Limit)
    }

    fn close(&mut self, id: u64) -> bool {
        match self.children.iter().position(|c| c.id().0 == id) {
            Some(pos) => {
                self.children.swap_remove(pos).close();
                true
            }
            None => false,
        }
    }

    fn is_running(&self, id: u64) -> Option<bool> {
        self.descendant(id).map(|i| i.is_running())
    }

    fn below(&self) -> Vec<u64> {
        let Some(registry) = self.registry.upgrade() else {
            return Vec::new();
        };
        registry
            .live()
            .into_iter()
            .filter(|i| i.ancestors().contains(&self.me))
            .map(|i| i.id().0)
            .collect()
    }
}

impl Drop for Kin {
    fn drop(&mut self) {
        // An interpreter's children go with it.
        for child in self.children.drain(..) {
            child.close();
        }
    }
}
