"""The sign-up page: allauth's view, opened with a sign already chosen (/accounts/signup/?sign=aries)."""

from allauth.account.views import SignupView as AllauthSignupView

from forecasts.zodiac import SIGNS_BY_SLUG


class SignupView(AllauthSignupView):
    def get_initial(self) -> dict:
        initial = super().get_initial()
        sign = self.request.GET.get("sign", "")
        if sign in SIGNS_BY_SLUG:  # anything else is ignored: the reader picks on the page
            initial["sign"] = sign
        return initial


signup = SignupView.as_view()
