"""``flat(a)``: a C-contiguous array's elements as one dimension, inside numba code.

The kernels and tn.compile's generated loops index their arrays flat (``out[i]``: with
``z[i, j]`` a loop ran 7x slower). numba's ``a.reshape(-1)`` makes that view through a call
into its C helper library (``numba_attempt_nocopy_reshape``), which LLVM cannot inline: about
15-20 ns each, and a small network's step made some twenty of them (the XOR step's segment
took 730 ns, 480 ns without them). For an array numba knows is C-contiguous (its type's layout
``'C'``) the flat view is only a new header over the same memory: the element count as its
one size, the item size as its one stride. ``flat`` builds that header in place; for any
other layout it is ``reshape(-1)``, as before (numba refuses it for layout ``'A'``, an array
it cannot know to be contiguous). Outside numba it is ``reshape(-1)`` too.
"""

from __future__ import annotations

from numba import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, overload
from numba.np.arrayobj import populate_array


def flat(a):
    """The elements of ``a`` as a 1-D view (``a.reshape(-1)``)."""
    return a.reshape(-1)


@intrinsic
def _flat_c(typingctx, a):  # pragma: no cover - compiled
    if not isinstance(a, types.Array) or a.layout != "C":
        return None

    def codegen(context, builder, signature, args):
        source = context.make_array(signature.args[0])(context, builder, args[0])
        view = context.make_array(signature.return_type)(context, builder)
        populate_array(view, data=source.data, shape=[source.nitems], strides=[source.itemsize],
                       itemsize=source.itemsize, meminfo=source.meminfo, parent=source.parent)
        return impl_ret_borrowed(context, builder, signature.return_type, view._getvalue())
    return a.copy(ndim=1, layout="C")(a), codegen


@overload(flat)
def _flat(a):  # pragma: no cover - compiled
    if isinstance(a, types.Array) and a.layout == "C":
        return lambda a: _flat_c(a)
    return lambda a: a.reshape(-1)
