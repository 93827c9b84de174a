"""Example Airflow DAG: calibrate a model nightly with quantcal on a Spark cluster.

Copy to your DAGs folder and set the Airflow Variables `quantcal_home` (a checkout of quantcal with the
cluster jar built: `mvn -Pcluster -DskipTests package`) and `quantcal_config` (a config on a shared file
system). Each run writes to its own output directory named after the logical date, so reruns of one
date replace only that date's output (output.overwrite=true) and a failed run leaves no output.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.models import Variable
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="quantcal_calibration",
    start_date=datetime(2026, 1, 1),
    schedule="@daily",
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["quantization"],
) as dag:
    BashOperator(
        task_id="calibrate",
        bash_command=(
            "{{ var.value.quantcal_home }}/deploy/quantcal-submit "
            "--master yarn --deploy-mode cluster --conf spark.executor.cores=2 "
            "run {{ var.value.quantcal_config }} "
            "run-id=quantcal-{{ ds_nodash }} "
            # overrides are values (no HOCON parsing): a root ending in "/" still names <root>/<date>
            "output.path={{ var.value.quantcal_output_root.rstrip('/') }}/{{ ds_nodash }} "
            "output.overwrite=true"
        ),
    )
