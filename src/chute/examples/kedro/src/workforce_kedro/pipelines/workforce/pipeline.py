from kedro.pipeline import Pipeline, node, pipeline

from .nodes import check_and_shape, cut_table, to_numbers


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(cut_table, ["workforce_sheet", "params:table_label", "params:measure"], "other_entities_cells",
             name="cut_table"),
        node(to_numbers, "other_entities_cells", "other_entities_typed", name="to_numbers"),
        node(check_and_shape, ["other_entities_typed", "params:percent_tolerance"],
             "headcount_by_gender_other_entities", name="check_and_shape"),
    ])
