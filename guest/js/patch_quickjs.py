"""Writes a copy of QuickJS-ng's quickjs.c with its C-stack check switched on
under WASI (upstream turns it off there), so deep recursion in a script ends
in a catchable RangeError instead of exhausting the wasm stack. The copy goes
to the build folder; the registry's sources are never changed.

usage: python3 patch_quickjs.py SRC/quickjs.c OUT/quickjs.c
"""
import sys

src, out = sys.argv[1], sys.argv[2]
text = open(src, encoding="utf-8").read()
old = """static void update_stack_limit(JSRuntime *rt)
{
#if defined(__wasi__)"""
new = """static void update_stack_limit(JSRuntime *rt)
{
#if 0 /* subinterp: keep the stack check under WASI */"""
if text.count(old) != 1:
    sys.exit(f"patch_quickjs.py: update_stack_limit not found as expected in {src}")
text = text.replace(old, new)
with open(out, "w", encoding="utf-8") as f:
    f.write(text)
