"""Writes a copy of QuickJS-ng's quickjs.c for the subinterp JS guest, with
six changes; the copy goes to the build folder, the registry's sources are
never changed:

1. its C-stack check is switched on under WASI (upstream turns it off there),
   so deep recursion in a script ends in a catchable RangeError instead of
   exhausting the wasm stack;
2. one function is added, `si_js_reseed`, which gives a context a fresh
   Math.random state and performance time origin. A pre-initialised snapshot
   of the guest starts every interpreter from the same memory, so each one
   reseeds itself before running any script;
3. JS_ReadObject numbers a RegExp among the objects it has read, as
   JS_WriteObject does: without it, a value holding a RegExp and, after it,
   an object referenced twice (JS_WRITE_OBJ_REFERENCE, which sendValue and
   structuredClone use) could not be read back ("invalid object reference");
4. JS_WriteObject refuses symbols unless it writes bytecode (as structured
   clone refuses them), so sendValue and structuredClone throw
   DataCloneError for a symbol instead of making a new one on the other side;
5. JS_ReadObject checks that a string's bytes are there before it allocates
   the string (upstream allocates first), so a forged message that claims a
   huge string is an error of the message (DataCloneError for recvValue),
   not an out-of-memory error;
6. one function is added, `si_js_new_like`, which makes a plain object with
   the shape of another (its prototype and property keys) and the given
   values: the message path makes each received `View` with it, one
   allocation of the object and one of its properties, without looking up
   or defining the property.

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
old = """    return js_regexp_constructor_internal(ctx, JS_UNDEFINED,
                                          JS_MKPTR(JS_TAG_STRING, pattern),
                                          JS_MKPTR(JS_TAG_STRING, bc));
}

static JSValue JS_ReadDate(BCReaderState *s)"""
new = """    JSValue re = js_regexp_constructor_internal(ctx, JS_UNDEFINED,
                                                JS_MKPTR(JS_TAG_STRING, pattern),
                                                JS_MKPTR(JS_TAG_STRING, bc));
    /* subinterp: numbered as the writer numbers it */
    if (!JS_IsException(re) && BC_add_object_ref(s, re)) {
        JS_FreeValue(ctx, re);
        return JS_EXCEPTION;
    }
    return re;
}

static JSValue JS_ReadDate(BCReaderState *s)"""
if text.count(old) != 1:
    sys.exit(f"patch_quickjs.py: JS_ReadRegExp not found as expected in {src}")
text = text.replace(old, new)
old = """            if (p->atom_type != JS_ATOM_TYPE_GLOBAL_SYMBOL && p->atom_type != JS_ATOM_TYPE_SYMBOL) {"""
new = """            if (!s->allow_bytecode || /* subinterp: as structured clone */
                (p->atom_type != JS_ATOM_TYPE_GLOBAL_SYMBOL && p->atom_type != JS_ATOM_TYPE_SYMBOL)) {"""
if text.count(old) != 1:
    sys.exit(f"patch_quickjs.py: the symbol case of JS_WriteObjectRec not found as expected in {src}")
text = text.replace(old, new)
old = """    p = js_alloc_string(s->ctx, len, is_wide_char);
    if (!p) {
        s->error_state = -1;
        return NULL;
    }
    size = (size_t)len << is_wide_char;
    if ((s->buf_end - s->ptr) < size) {
        bc_read_error_end(s);
        js_free_string(s->ctx->rt, p);
        return NULL;
    }"""
new = """    size = (size_t)len << is_wide_char;
    if ((s->buf_end - s->ptr) < size) { /* subinterp: before allocating */
        bc_read_error_end(s);
        return NULL;
    }
    p = js_alloc_string(s->ctx, len, is_wide_char);
    if (!p) {
        s->error_state = -1;
        return NULL;
    }"""
if text.count(old) != 1:
    sys.exit(f"patch_quickjs.py: JS_ReadString not found as expected in {src}")
text = text.replace(old, new)
text += """

/* subinterp: see guest/js/patch_quickjs.py. */
void si_js_reseed(JSContext *ctx, uint64_t seed)
{
    ctx->random_state = seed ? seed : 1;
    ctx->time_origin = js__now_ms();
}

/* subinterp: a new object of class Object with the shape of `tmpl` (an
 * object of class Object whose properties are all plain data properties)
 * and `values` as its properties' values, in the shape's order; the values
 * are taken, also on failure (JS_EXCEPTION). */
JSValue si_js_new_like(JSContext *ctx, JSValueConst tmpl, JSValue *values)
{
    JSProperty props[4];
    JSObject *t;
    JSShape *sh;
    int i;

    /* Only the guest's own templates come here: one to four properties. */
    if (JS_VALUE_GET_TAG(tmpl) != JS_TAG_OBJECT)
        return JS_ThrowInternalError(ctx, "si_js_new_like: not a template");
    t = JS_VALUE_GET_OBJ(tmpl);
    sh = t->shape;
    if (t->class_id != JS_CLASS_OBJECT || sh->prop_count > 4) {
        for(i = 0; i < sh->prop_count; i++)
            JS_FreeValue(ctx, values[i]);
        return JS_ThrowInternalError(ctx, "si_js_new_like: not a template");
    }
    for(i = 0; i < sh->prop_count; i++)
        props[i].u.value = values[i];
    return JS_NewObjectFromShape(ctx, js_dup_shape(sh), JS_CLASS_OBJECT, props);
}
"""
with open(out, "w", encoding="utf-8") as f:
    f.write(text)
