# Included after CPython's own Makefile (build-wasi) to print the libraries a
# program embedding libpython links: LIBS, MODLIBS (the static modules' own
# libraries: libmpdec, expat, HACL) and SYSLIBS, with paths made absolute.
print-link:
	@echo $(foreach w,$(LIBS) $(MODLIBS) $(SYSLIBS),$(if $(filter -%,$(w)),$(w),$(abspath $(w))))
