/* The builtin module `_subinterp` (module.c), for PyImport_AppendInittab. */
#ifndef SUBINTERP_PY_MODULE_H
#define SUBINTERP_PY_MODULE_H

#include <Python.h>

PyObject *si_py_module_init(void);

#endif
