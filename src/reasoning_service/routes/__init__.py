"""HTTP routes of the service, one APIRouter per module (mounted by reasoning_service.app.create_app)."""
