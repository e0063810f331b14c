"""The methods: one module each, the same three functions in each.

``forward(x, w, b, params)``, ``grad_input(dout, w, x_shape, params)`` and
``grad_weight(dout, x, w_shape, params)`` take validated arrays of one dtype and a
:class:`~convbook.shapes.ConvParams`; :mod:`convbook.conv` validates and dispatches.

* :mod:`~convbook.methods.reference`: loops over the definition, obviously right;
* :mod:`~convbook.methods.tutorial`: the source tutorial's route, im2col by a loop and
  one matrix product;
* :mod:`~convbook.methods.strided`: the column matrix from a strided view, the whole
  layer on one page;
* :mod:`~convbook.methods.wide`: the strided method on "wide rows", cheaper to copy;
* :mod:`~convbook.methods.winograd`: Winograd's F(m x m, r x r) tiles over a batch,
  for 3 x 3 and 5 x 5 kernels.
"""
