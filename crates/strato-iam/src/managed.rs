//! AWS managed policies, present in every account under
//! `arn:aws:iam::aws:policy/...`, with their documents as AWS publishes
//! them (the two catch-all read/full ones are cut down to the services
//! Strato implements; see docs/iam.md).

/// (path, name, document).
pub const AWS_MANAGED: &[(&str, &str, &str)] = &[
    (
        "/",
        "AdministratorAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ),
    (
        "/service-role/",
        "AWSLambdaBasicExecutionRole",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    ),
    (
        "/service-role/",
        "AWSLambdaSQSQueueExecutionRole",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sqs:ReceiveMessage","sqs:DeleteMessage","sqs:GetQueueAttributes","logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    ),
    (
        "/service-role/",
        "AWSLambdaDynamoDBExecutionRole",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:DescribeStream","dynamodb:GetRecords","dynamodb:GetShardIterator","dynamodb:ListStreams","logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    ),
    (
        "/service-role/",
        "AWSLambdaVPCAccessExecutionRole",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents","ec2:CreateNetworkInterface","ec2:DescribeNetworkInterfaces","ec2:DescribeSubnets","ec2:DeleteNetworkInterface","ec2:AssignPrivateIpAddresses","ec2:UnassignPrivateIpAddresses"],"Resource":"*"}]}"#,
    ),
    (
        "/service-role/",
        "AWSLambdaRole",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["lambda:InvokeFunction"],"Resource":["*"]}]}"#,
    ),
    (
        "/",
        "AWSLambdaExecute",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:*"],"Resource":"arn:aws:logs:*:*:*"},{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::*"}]}"#,
    ),
    (
        "/",
        "AWSLambda_FullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudformation:DescribeStacks","cloudformation:ListStackResources","cloudwatch:ListMetrics","cloudwatch:GetMetricData","ec2:DescribeSecurityGroups","ec2:DescribeSubnets","ec2:DescribeVpcs","kms:ListAliases","iam:GetPolicy","iam:GetPolicyVersion","iam:GetRole","iam:GetRolePolicy","iam:ListAttachedRolePolicies","iam:ListRolePolicies","iam:ListRoles","lambda:*","logs:DescribeLogGroups","states:DescribeStateMachine","states:ListStateMachines","tag:GetResources","xray:GetTraceSummaries","xray:BatchGetTraces"],"Resource":"*"},{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"lambda.amazonaws.com"}}},{"Effect":"Allow","Action":["logs:DescribeLogStreams","logs:GetLogEvents","logs:FilterLogEvents","logs:StartLiveTail","logs:StopLiveTail"],"Resource":"arn:aws:logs:*:*:log-group:/aws/lambda/*"}]}"#,
    ),
    (
        "/",
        "AWSLambda_ReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudformation:DescribeStacks","cloudformation:DescribeStackResources","cloudwatch:GetMetricData","cloudwatch:ListMetrics","ec2:DescribeSecurityGroups","ec2:DescribeSubnets","ec2:DescribeVpcs","iam:GetPolicy","iam:GetPolicyVersion","iam:GetRole","iam:GetRolePolicy","iam:ListAttachedRolePolicies","iam:ListRolePolicies","iam:ListRoles","kms:ListAliases","lambda:Get*","lambda:List*","logs:DescribeLogGroups","states:DescribeStateMachine","states:ListStateMachines","tag:GetResources","xray:GetTraceSummaries","xray:BatchGetTraces"],"Resource":"*"},{"Effect":"Allow","Action":["logs:DescribeLogStreams","logs:GetLogEvents","logs:FilterLogEvents","logs:StartLiveTail","logs:StopLiveTail"],"Resource":"arn:aws:logs:*:*:log-group:/aws/lambda/*"}]}"#,
    ),
    (
        "/",
        "AmazonS3ReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*","s3-object-lambda:Get*","s3-object-lambda:List*"],"Resource":"*"}]}"#,
    ),
    (
        "/",
        "AmazonS3FullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","s3-object-lambda:*"],"Resource":"*"}]}"#,
    ),
    (
        "/",
        "AmazonSQSFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Action":["sqs:*"],"Effect":"Allow","Resource":"*"}]}"#,
    ),
    (
        "/",
        "AmazonSQSReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sqs:GetQueueAttributes","sqs:GetQueueUrl","sqs:ListDeadLetterSourceQueues","sqs:ListQueues","sqs:ListMessageMoveTasks","sqs:ListQueueTags"],"Resource":"*"}]}"#,
    ),
    (
        "/",
        "AmazonSNSFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Action":["sns:*"],"Effect":"Allow","Resource":"*"}]}"#,
    ),
    (
        "/",
        "AmazonDynamoDBFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Action":["dynamodb:*","dax:*","application-autoscaling:DeleteScalingPolicy","application-autoscaling:DeregisterScalableTarget","application-autoscaling:DescribeScalableTargets","application-autoscaling:DescribeScalingActivities","application-autoscaling:DescribeScalingPolicies","application-autoscaling:PutScalingPolicy","application-autoscaling:RegisterScalableTarget","cloudwatch:DeleteAlarms","cloudwatch:DescribeAlarmHistory","cloudwatch:DescribeAlarms","cloudwatch:DescribeAlarmsForMetric","cloudwatch:GetMetricStatistics","cloudwatch:ListMetrics","cloudwatch:PutMetricAlarm","cloudwatch:GetMetricData","kinesis:ListStreams","kinesis:DescribeStream","kinesis:DescribeStreamSummary","kms:DescribeKey","kms:ListAliases","lambda:CreateFunction","lambda:ListFunctions","lambda:ListEventSourceMappings","lambda:CreateEventSourceMapping","lambda:DeleteEventSourceMapping","lambda:GetFunctionConfiguration","lambda:DeleteFunction","sns:CreateTopic","sns:DeleteTopic","sns:ListSubscriptions","sns:ListSubscriptionsByTopic","sns:ListTopics","sns:Subscribe","sns:Unsubscribe","sns:SetTopicAttributes","iam:GetRole","iam:ListRoles"],"Effect":"Allow","Resource":"*"}]}"#,
    ),
    (
        "/",
        "CloudWatchLogsFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:*","cloudwatch:GenerateQuery"],"Resource":"*"}]}"#,
    ),
    (
        "/",
        "CloudWatchFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudwatch:*","logs:*","sns:*","iam:GetPolicy","iam:GetPolicyVersion","iam:GetRole"],"Resource":"*"}]}"#,
    ),
    (
        "/",
        "AmazonAPIGatewayAdministrator",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["apigateway:*"],"Resource":"arn:aws:apigateway:*::/*"}]}"#,
    ),
    (
        "/",
        "AmazonAPIGatewayInvokeFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["execute-api:Invoke","execute-api:ManageConnections"],"Resource":"arn:aws:execute-api:*:*:*"}]}"#,
    ),
    (
        "/",
        "AmazonEventBridgeFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["events:*","schemas:*","scheduler:*","pipes:*"],"Resource":"*"}]}"#,
    ),
    (
        "/",
        "IAMFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:*","organizations:DescribeAccount","organizations:DescribeOrganization","organizations:DescribeOrganizationalUnit","organizations:DescribePolicy","organizations:ListChildren","organizations:ListParents","organizations:ListPoliciesForTarget","organizations:ListRoots","organizations:ListPolicies","organizations:ListTargetsForPolicy"],"Resource":"*"}]}"#,
    ),
    (
        "/",
        "IAMReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:GenerateCredentialReport","iam:GenerateServiceLastAccessedDetails","iam:Get*","iam:List*","iam:SimulateCustomPolicy","iam:SimulatePrincipalPolicy"],"Resource":"*"}]}"#,
    ),
    (
        "/",
        "ReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["apigateway:GET","cloudwatch:Describe*","cloudwatch:Get*","cloudwatch:List*","dynamodb:BatchGet*","dynamodb:Describe*","dynamodb:Get*","dynamodb:List*","dynamodb:Query","dynamodb:Scan","events:Describe*","events:List*","events:Test*","iam:Generate*","iam:Get*","iam:List*","iam:Simulate*","lambda:Get*","lambda:List*","logs:Describe*","logs:FilterLogEvents","logs:Get*","logs:ListTagsForResource","logs:ListTagsLogGroup","logs:StartQuery","logs:StopQuery","logs:TestMetricFilter","s3:Get*","s3:List*","scheduler:Get*","scheduler:List*","sns:Check*","sns:Get*","sns:List*","sqs:Get*","sqs:List*","sqs:Receive*","states:Describe*","states:Get*","states:List*","sts:GetCallerIdentity","tag:Get*"],"Resource":"*"}]}"#,
    ),
];

/// The ARN of an AWS managed policy.
pub fn aws_managed_arn(path: &str, name: &str) -> String {
    format!("arn:aws:iam::aws:policy{path}{name}")
}

/// (path, name, document) of the AWS managed policy `arn`.
pub fn find(arn: &str) -> Option<(&'static str, &'static str, &'static str)> {
    AWS_MANAGED
        .iter()
        .copied()
        .find(|(path, name, _)| aws_managed_arn(path, name) == arn)
}
