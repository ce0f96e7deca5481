"""The computations behind the notebooks, one module per notebook; nothing here draws
(`gradreg.plotting` does). The notebooks hold prose, parameters and calls into these.

    settings     the notebooks' profiles and sizes (NOTEBOOK_SETTINGS) and `setup`
    vanishing    01  delta profiles against the bound
    estimation   02  long-term scores, the cost of per-example gradients
    reference    02, 03 and the tests: a plain autograd reference of the SRN's gradients
    minibatch    03  the minibatch theory's statements, the selection rules on a pool
    gallery      04  one example of every task
    training     05, 06  the configs of a comparison of methods
    long_range   06  the committed sweep results, or the runs to make
    protocols    07  Pascanu's conventions against the authors'
    sensitivity  08  the screen of our reading's free choices, and the variant carried forward

Runs go through `gradreg.runs.run_configs`; tables of runs are `gradreg.analysis`'s. The explorer's
numbers, figure and widgets are one module of their own, `gradreg.explore`.
"""
