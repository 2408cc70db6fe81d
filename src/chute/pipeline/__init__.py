"""The user's pipeline: nodes over named datasets, checked as a graph, run in order.

    graph.py  Node, @node, @file_filter, Pipeline, Plan (run_static, run_batch), load_pipeline,
              run_node, as_frame

May import: config and the loose modules. Not transforms (they build on Node).
"""
