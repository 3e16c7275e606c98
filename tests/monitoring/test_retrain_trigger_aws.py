"""The AWS retraining path, under moto: the drift metric breaches the alarm that `infra/` declares,
and the alarm's state change matches the EventBridge rule that notifies the retraining subscriber."""

from __future__ import annotations

import json

from infra.components.monitoring import alarm_names, drift_alarm_event_pattern
from pipelines.adapters.aws.metrics import CloudWatchMetrics
from pipelines.ports import MetricDatum
from tests.aws_emulator import aws_client


def test_drift_metric_alarm_and_event_rule(aws: str) -> None:
    name = alarm_names("dev")["feature_drift"]
    cloudwatch = aws_client(aws, "cloudwatch")
    # The alarm as infra declares it (namespace, metric, threshold from the dev stack config).
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="mlops/dev",
        MetricName="drift_max_psi",
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=0.25,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    CloudWatchMetrics("mlops/dev").put(
        [MetricDatum("drift_max_psi", 0.8, {"environment": "dev", "model": "churn-model"})]
    )
    assert any(
        m["MetricName"] == "drift_max_psi" for m in cloudwatch.list_metrics(Namespace="mlops/dev")["Metrics"]
    )
    # moto does not evaluate alarms: move it to ALARM as CloudWatch would on that datapoint.
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="drift_max_psi 0.8 >= 0.25")
    assert cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "ALARM"

    # Route through a real rule with the infra pattern to a queue standing in for the subscriber.
    events, sqs = aws_client(aws, "events"), aws_client(aws, "sqs")
    queue = sqs.create_queue(QueueName="retrain-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="mlops-dev-drift-alarm", EventPattern=json.dumps(drift_alarm_event_pattern(name)))
    events.put_targets(Rule="mlops-dev-drift-alarm", Targets=[{"Id": "retrain", "Arn": queue_arn}])

    def emit(alarm: str, state: str) -> None:
        detail = {"alarmName": alarm, "state": {"value": state}, "previousState": {"value": "OK"}}
        events.put_events(
            Entries=[
                {
                    "Source": "aws.cloudwatch",
                    "DetailType": "CloudWatch Alarm State Change",
                    "Detail": json.dumps(detail),
                }
            ]
        )

    emit(name, "ALARM")
    emit(name, "OK")  # recovery: no retraining
    emit("mlops-dev-endpoint-5xx-rate", "ALARM")  # another alarm: not this rule's business
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    )
    details = [json.loads(m["Body"])["detail"] for m in received]
    assert details == [{"alarmName": name, "state": {"value": "ALARM"}, "previousState": {"value": "OK"}}]
