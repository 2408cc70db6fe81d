"""The user's pipeline: nodes over named datasets, checked as a graph, run in order.

    graph.py  Node, @node, @file_filter, Pipeline, Plan (run_static, run_batch), load_pipeline,
              run_node, as_frame
    kedro.py  a Kedro project's pipeline as chute nodes ([pipeline] kedro): its nodes, its
              catalog's once-per-run inputs, pandas/polars at the node boundary; the files
              and packages a deployment image needs for it (kedro: an optional extra)

May import: config and the loose modules. Not transforms (they build on Node).
"""
