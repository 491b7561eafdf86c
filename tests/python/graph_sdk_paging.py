"""The Python Graph SDK (msgraph-sdk, from PyPI) against the lab, as an app pages through
its users: client credentials through azure-identity, then GET /users with $top=100 and
the SDK following @odata.nextLink; an advanced query ($count, ConsistencyLevel: eventual)
with $filter and $orderby.

Run by tests/tests/tenant_clients.rs:  python graph_sdk_paging.py '<lab info JSON>' <expected users>
"""
import asyncio
import json
import sys
import urllib.parse

import httpx
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory

info, expected = json.loads(sys.argv[1]), int(sys.argv[2])
t = info["tenant"]
ca = info["ca"]
checks = 0


def check(ok, what, detail=""):
    global checks
    if not ok:
        print("FAIL", what, detail, flush=True)
        sys.exit(1)
    checks += 1
    print("ok  ", what, flush=True)


async def main():
    authority = urllib.parse.urlparse(t["authority"])
    credential = ClientSecretCredential(
        t["tenant_id"], t["client_id"], t["client_secret"], authority=f"https://{authority.netloc}", disable_instance_discovery=True
    )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=[authority.hostname])
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=ca))
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = t["graph"]
    graph = GraphServiceClient(request_adapter=adapter)

    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=100, select=["id", "userPrincipalName"])
    page = await graph.users.get(request_configuration=RequestConfiguration(query_parameters=query))
    seen, pages = [u.user_principal_name for u in page.value], 1
    check(len(seen) == 100 and page.odata_next_link, "the first page: 100 users and a next link", len(seen))
    while page.odata_next_link:
        page = await graph.users.with_url(page.odata_next_link).get()
        seen += [u.user_principal_name for u in page.value]
        pages += 1
    check(len(seen) == expected and len(set(seen)) == expected, f"{expected} users in {pages} pages, none twice", len(seen))
    check(pages == (expected + 99) // 100, "pages of 100", pages)

    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter="startswith(displayName,'Bulk')", orderby=["displayName desc"], count=True, top=5, select=["displayName"]
    )
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("ConsistencyLevel", "eventual")
    page = await graph.users.get(request_configuration=config)
    names = [u.display_name for u in page.value]
    check(page.odata_count == expected - info["seeded"] and names == sorted(names, reverse=True) and len(names) == 5, "an advanced query counts and sorts", (page.odata_count, names))
    await credential.close()
    print(f"{checks} checks passed", flush=True)


asyncio.run(main())
