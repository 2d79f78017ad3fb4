"""The ``aws`` target: run a suite on freshly launched EC2 instances and bring the run files home.

Modules, each with one job:

- ``session``       boto3 clients for one region (the one place an endpoint URL is injected)
- ``tags``          the tags every resource carries, and reading expiry back
- ``ami``           instance kind, AMI line (Neuron by NeuronCore generation) and the AMI from SSM
- ``prices``        the hourly price: the price catalog's, or EC2's spot price history for --spot
- ``storage``       the S3 layout shared by the launcher and the instance (job, heartbeat, run file)
- ``ship``          the code an instance installs: a wheel of this siliconbench and its pure deps
- ``userdata``      the bootstrap script the instance runs at first boot
- ``launch``        security group, run_instances with IMDSv2/encryption/tags, terminate
- ``iam``           the least-privilege policies, and an instance profile made on request
- ``agent``         the on-instance entry point (``siliconbench agent``)
- ``watch``         follow one instance's state and heartbeat, with bootstrap/silence/run limits
- ``orchestrator``  one thread per instance type: launch, watch, fetch, terminate in ``finally``
- ``preflight``     read-only checks that the account and region are ready (quotas, subnet, ...)
- ``plan``          the dry run: what would be launched and what it would cost
- ``cleanup``       find tagged resources and remove the expired ones
- ``cli``           the command-line glue

boto3 is an optional dependency (``pip install siliconbench[aws]``) imported only when used.
"""
