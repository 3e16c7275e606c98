"""Monitoring: KMS-encrypted log groups, an SNS topic, the alarms the deployment flow rolls back on,
a per-environment dashboard, and the SageMaker endpoints' execution role."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.context import StackContext, child, policy_document, service_role

LOG_GROUPS = ("batch", "endpoints", "flows")


def alarm_names(env: str) -> dict[str, str]:
    """The alarms' names, by role; they go into the platform contract."""
    return {
        "endpoint_5xx_rate": f"mlops-{env}-endpoint-5xx-rate",
        "endpoint_p99_latency": f"mlops-{env}-endpoint-p99-latency",
        "batch_job_failures": f"mlops-{env}-batch-job-failures",
        "feature_drift": f"mlops-{env}-feature-drift",
    }


class Monitoring(pulumi.ComponentResource):
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    topic: aws.sns.Topic
    alarm_names: dict[str, str]
    namespace: str
    endpoint_name: str
    endpoint_role: aws.iam.Role

    def __init__(
        self, ctx: StackContext, key_arn: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:platform:Monitoring", ctx.name("monitoring"), None, opts)
        cfg = ctx.config.monitoring
        self.namespace = f"mlops/{ctx.env}"
        self.alarm_names = alarm_names(ctx.env)
        self.log_groups = {
            purpose: aws.cloudwatch.LogGroup(
                ctx.name(f"{purpose}-logs"),
                name=f"/mlops/{ctx.env}/{purpose}",
                retention_in_days=cfg.log_retention_days,
                kms_key_id=key_arn,
                tags=ctx.tags(),
                opts=child(self),
            )
            for purpose in LOG_GROUPS
        }
        # SageMaker writes an endpoint's container logs to this group; created here so that it has
        # the environment's retention and key instead of SageMaker's default (kept forever, unencrypted).
        self.log_groups["endpoint-container"] = aws.cloudwatch.LogGroup(
            ctx.name("endpoint-container-logs"),
            name=sagemaker_endpoint_log_group(ctx.name("endpoint")),
            retention_in_days=cfg.log_retention_days,
            kms_key_id=key_arn,
            tags=ctx.tags(),
            opts=child(self),
        )
        self.topic = aws.sns.Topic(
            ctx.name("alerts"),
            name=ctx.name("alerts"),
            kms_master_key_id=key_arn,
            tags=ctx.tags(),
            opts=child(self),
        )
        aws.sns.TopicPolicy(
            ctx.name("alerts-policy"),
            arn=self.topic.arn,
            policy=policy_document(
                {
                    "Sid": "AlarmsAndEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                    "Action": "sns:Publish",
                    "Resource": self.topic.arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": ctx.account_id}},
                }
            ),
            opts=child(self),
        )
        for index, email in enumerate(cfg.alarm_emails):
            aws.sns.TopicSubscription(
                ctx.name(f"alerts-email-{index}"),
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child(self),
            )

        endpoint = self.endpoint_name = ctx.name("endpoint")
        actions = [self.topic.arn]

        def alarm(logical: str, **settings: Any) -> aws.cloudwatch.MetricAlarm:
            settings.setdefault("evaluation_periods", cfg.evaluation_periods)
            return aws.cloudwatch.MetricAlarm(
                logical,
                alarm_actions=actions,
                ok_actions=actions,
                treat_missing_data="notBreaching",
                tags=ctx.tags(),
                opts=child(self),
                **settings,
            )

        alarm(
            ctx.name("endpoint-5xx-rate"),
            name=self.alarm_names["endpoint_5xx_rate"],
            alarm_description="Share of endpoint invocations answered with a 5xx",
            comparison_operator="GreaterThanThreshold",
            threshold=cfg.endpoint_5xx_rate,
            metric_queries=[
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    expression="errors / MAX([errors, invocations])",
                    label="5xx rate",
                    return_data=True,
                ),
                _sagemaker_query("errors", "Invocation5XXErrors", endpoint),
                _sagemaker_query("invocations", "Invocations", endpoint),
            ],
        )
        alarm(
            ctx.name("endpoint-p99-latency"),
            name=self.alarm_names["endpoint_p99_latency"],
            alarm_description="p99 model latency of the endpoint",
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions={"EndpointName": endpoint, "VariantName": "AllTraffic"},
            extended_statistic="p99",
            period=60,
            comparison_operator="GreaterThanThreshold",
            threshold=cfg.endpoint_p99_latency_ms * 1000,  # ModelLatency is in microseconds
        )
        alarm(
            ctx.name("batch-job-failures"),
            name=self.alarm_names["batch_job_failures"],
            alarm_description="Training jobs that failed after their retries (published by the compute adapter)",
            namespace=self.namespace,
            metric_name="batch_job_failures",
            statistic="Sum",
            period=300,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            evaluation_periods=1,
        )
        alarm(
            ctx.name("feature-drift"),
            name=self.alarm_names["feature_drift"],
            alarm_description="Largest per-feature drift score published by the monitoring flow",
            namespace=self.namespace,
            metric_name="drift_max_psi",
            statistic="Maximum",
            period=3600,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=cfg.drift_alert_threshold,
            evaluation_periods=1,
        )
        failed_jobs = aws.cloudwatch.EventRule(
            ctx.name("batch-failed-jobs"),
            description="AWS Batch jobs of this environment that failed",
            event_pattern=json.dumps(
                {
                    "source": ["aws.batch"],
                    "detail-type": ["Batch Job State Change"],
                    "detail": {"status": ["FAILED"], "jobQueue": [{"wildcard": f"*{ctx.name('')}*"}]},
                }
            ),
            tags=ctx.tags(),
            opts=child(self),
        )
        aws.cloudwatch.EventTarget(
            ctx.name("batch-failed-jobs-to-sns"), rule=failed_jobs.name, arn=self.topic.arn, opts=child(self)
        )
        # The retraining trigger in AWS: the drift alarm entering ALARM is an event; it notifies the
        # alerts topic, and the orchestrator's training deployment subscribes to it (issue #8).
        drift_rule = aws.cloudwatch.EventRule(
            ctx.name("drift-alarm"),
            description="The feature-drift alarm fired: retrain",
            event_pattern=json.dumps(drift_alarm_event_pattern(self.alarm_names["feature_drift"])),
            tags=ctx.tags(),
            opts=child(self),
        )
        aws.cloudwatch.EventTarget(
            ctx.name("drift-alarm-to-sns"), rule=drift_rule.name, arn=self.topic.arn, opts=child(self)
        )
        aws.cloudwatch.Dashboard(
            ctx.name("dashboard"),
            dashboard_name=ctx.name("platform"),
            dashboard_body=json.dumps(_dashboard(ctx.region, self.namespace, endpoint)),
            opts=child(self),
        )
        self.register_outputs({"topic_arn": self.topic.arn})

    def add_endpoint_role(
        self,
        ctx: StackContext,
        key_arn: pulumi.Input[str],
        artifacts_arn: pulumi.Input[str],
        curated_arn: pulumi.Input[str],
        serving_repo_arn: pulumi.Input[str],
    ) -> aws.iam.Role:
        """The SageMaker endpoints' execution role: its model artifacts, its image, data capture, logs, metrics."""
        self.endpoint_role = service_role(
            ctx,
            self,
            "endpoint-execution",
            "sagemaker.amazonaws.com",
            {
                # Each version's bundle is `runs/<model>/<run>/model/`, read as an S3 prefix.
                "Sid": "ModelArtifacts",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": pulumi.Output.concat(artifacts_arn, "/runs/*/model/*"),
            },
            {
                "Sid": "ModelArtifactListing",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": artifacts_arn,
                "Condition": {"StringLike": {"s3:prefix": ["runs/*/model/*"]}},
            },
            {
                # SageMaker reads the auto-rollback alarms with this role during a guarded update.
                "Sid": "RollbackAlarms",
                "Effect": "Allow",
                "Action": "cloudwatch:DescribeAlarms",
                "Resource": [
                    ctx.arn("cloudwatch", f"alarm:{self.alarm_names[name]}")
                    for name in ("endpoint_5xx_rate", "endpoint_p99_latency")
                ],
            },
            {
                "Sid": "DataCapture",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(curated_arn, "/data-capture/*"),
            },
            {
                "Sid": "ServingImage",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                "Resource": serving_repo_arn,
            },
            {
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "DataKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": key_arn,
            },
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [
                    pulumi.Output.concat(self.log_groups[purpose].arn, ":*")
                    for purpose in ("endpoints", "endpoint-container")
                ],
            },
            {
                "Sid": "Metrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": ["AWS/SageMaker", self.namespace]}},
            },
        )
        return self.endpoint_role


def sagemaker_endpoint_log_group(endpoint_name: str) -> str:
    """Where SageMaker writes the container logs of an endpoint (fixed by SageMaker, not configurable)."""
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def drift_alarm_event_pattern(alarm_name: str) -> dict[str, object]:
    """EventBridge pattern for the drift alarm going into ALARM (the retraining trigger)."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [alarm_name], "state": {"value": ["ALARM"]}},
    }


def _sagemaker_query(query_id: str, metric: str, endpoint: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace="AWS/SageMaker",
            metric_name=metric,
            dimensions={"EndpointName": endpoint, "VariantName": "AllTraffic"},
            period=60,
            stat="Sum",
        ),
    )


def _dashboard(region: str, namespace: str, endpoint: str) -> dict[str, object]:
    def widget(title: str, metrics: list[list[object]], x: int, y: int) -> dict[str, object]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "metrics": metrics,
                "stat": "Sum",
                "period": 300,
            },
        }

    return {
        "widgets": [
            widget(
                "Endpoint invocations and 5xx",
                [
                    ["AWS/SageMaker", "Invocations", "EndpointName", endpoint, "VariantName", "AllTraffic"],
                    [".", "Invocation5XXErrors", ".", ".", ".", "."],
                ],
                0,
                0,
            ),
            widget(
                "Endpoint p99 latency (µs)",
                [
                    [
                        "AWS/SageMaker",
                        "ModelLatency",
                        "EndpointName",
                        endpoint,
                        "VariantName",
                        "AllTraffic",
                        {"stat": "p99"},
                    ]
                ],
                12,
                0,
            ),
            widget("Feature drift (max PSI)", [[namespace, "drift_max_psi", {"stat": "Maximum"}]], 0, 6),
            widget(
                "Evaluation AUC and training failures",
                [[namespace, "evaluation_auc", {"stat": "Average"}], [namespace, "batch_job_failures"]],
                12,
                6,
            ),
            # The quality flow publishes per version and slice: a search finds whichever exist.
            widget(
                "Live AUC from late labels (per version and slice)",
                [
                    [_search(namespace, "live_auc", "environment,model,version", "Average", "live", "q1")],
                    [
                        _search(
                            namespace, "live_auc", "environment,model,slice,version", "Average", "slice", "q2"
                        )
                    ],
                ],
                0,
                12,
            ),
            widget(
                "Labels: pending and unlabelled predictions",
                [
                    [_search(namespace, "labels_pending", "environment,model", "Maximum", "pending", "l1")],
                    [
                        _search(
                            namespace, "labels_unlabelled", "environment,model", "Maximum", "unlabelled", "l2"
                        )
                    ],
                ],
                12,
                12,
            ),
            widget(
                "Endpoint latency p50 / p99 and overhead (µs)",
                [
                    [
                        "AWS/SageMaker",
                        "ModelLatency",
                        "EndpointName",
                        endpoint,
                        "VariantName",
                        "AllTraffic",
                        {"stat": "p50"},
                    ],
                    [".", "ModelLatency", ".", ".", ".", ".", {"stat": "p99"}],
                    [".", "OverheadLatency", ".", ".", ".", ".", {"stat": "p99"}],
                ],
                0,
                18,
            ),
            widget(
                "Endpoint instances: CPU and memory (%)",
                [
                    [
                        "/aws/sagemaker/Endpoints",
                        "CPUUtilization",
                        "EndpointName",
                        endpoint,
                        "VariantName",
                        "AllTraffic",
                        {"stat": "Average"},
                    ],
                    [".", "MemoryUtilization", ".", ".", ".", ".", {"stat": "Average"}],
                ],
                12,
                18,
            ),
        ]
    }


def _search(
    namespace: str, metric: str, dimensions: str, stat: str, label: str, ident: str
) -> dict[str, object]:
    """A CloudWatch SEARCH expression over every dimension value the metric is published with."""
    query = f"SEARCH('{{{namespace},{dimensions}}} MetricName=\"{metric}\"', '{stat}', 3600)"
    return {"expression": query, "label": label, "id": ident}
