from django.urls import path

from orders.views import OrderDetailApi, OrderListApi

app_name = "orders"

urlpatterns = [
    path("", OrderListApi.as_view(), name="list"),
    path("<int:number>/", OrderDetailApi.as_view(), name="detail"),
]
